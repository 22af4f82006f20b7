"""mmseg_longtail.experiments.selection: each loss's setting is chosen on
the selection split's sweep seeds only and reported on the report split
over all its seeds."""
import pytest

from mmseg_longtail.experiments import (Cell, RunRecord, SplitMetrics, gather,
                                        run_name, select_variants)
from mmseg_longtail.experiments.selection import (Reported, mean_std,
                                                  report_selected)
from tests.test_experiments.helpers import C, camvid_study, fake_record


def _record(cell, sel, rep):
    return RunRecord(
        study='s', name=f'r{cell.loss}{cell.variant}{cell.seed}',
        cell=cell.to_dict(), options={}, iters=10,
        selection=SplitMetrics('selection', dict(mIoU=sel, mIoU_tail=rep)),
        report=SplitMetrics('report', dict(mIoU=rep, mIoU_tail=sel)))


def test_selection_reads_only_the_selection_split(grid):
    d, m = 'camvid', 'unet'
    recs = {}
    # tau5 is best on the selection split, tau1 on the report split
    for seed, (s1, s2, s5) in enumerate(((40, 45, 50), (42, 44, 48))):
        for tag, sel, rep in (('tau1', s1, 90.0), ('tau2', s2, 10.0),
                              ('tau5', s5, 20.0 + seed)):
            c = Cell(d, m, 'pat', tag, seed)
            recs[c] = _record(c, float(sel), rep)
    # a further seed of the selected variant: reported, not selected on
    c = Cell(d, m, 'pat', 'tau5', 2)
    recs[c] = _record(c, 0.0, 25.0)
    sel = select_variants(grid, recs)[(d, m, 'pat')]
    # the grid's sweep seeds are [0]: only seed 0 is compared (seed 1 of
    # the other variants is ignored), and the sweep is complete
    assert sel.variant == 'tau5' and sel.scores == dict(
        tau1=40.0, tau2=45.0, tau5=50.0)
    assert sel.complete and sel.metric == 'mIoU'
    rep = report_selected(grid, recs, {(d, m, 'pat'): sel})[(d, m, 'pat')]
    assert rep.seeds == [0, 1, 2] and rep.values('mIoU') == [20.0, 21.0,
                                                             25.0]
    assert rep.label == 'PAT (tau=5)'
    # the tail option: mIoU_tail of the selection split (= report mIoU in
    # these records by construction) picks tau1
    assert select_variants(grid, recs, 'mIoU_tail')[
        (d, m, 'pat')].variant == 'tau1'
    # an unfinished sweep: the choice so far, not complete; a tie goes to
    # the first setting in the spec; a group without runs has no choice
    part = {c: r for c, r in recs.items() if c.variant != 'tau5'}
    part[Cell(d, m, 'pat', 'tau2', 0)] = _record(
        Cell(d, m, 'pat', 'tau2', 0), 40.0, 10.0)
    sel = select_variants(grid, part)[(d, m, 'pat')]
    assert (sel.variant, sel.complete) == ('tau1', False)
    assert sel.scores == dict(tau1=40.0, tau2=40.0, tau5=None)
    assert (d, m, 'ce') not in select_variants(grid, part)


def test_reported_values_per_split():
    """A selected setting's seeds read on either split; a run without the
    split's metrics or the key adds nothing; an unknown split names
    itself."""
    st = camvid_study()

    def rec(seed, sel, rep):
        cell = C('blv', seed, 'sigma2')
        return RunRecord(
            study=st.name, name=run_name(st, cell), cell=cell.to_dict(),
            options={}, iters=2400,
            selection=None if sel is None else SplitMetrics(
                'selection', dict(mIoU=sel), [], 2400),
            report=SplitMetrics('report', dict(mIoU=rep, aAcc=80.0), [],
                                None))

    reported = Reported(('camvid', 'unet', 'blv'), 'sigma2', 'BLV',
                        [rec(0, 33.6, 41.9), rec(1, 33.2, 41.4),
                         rec(2, None, 41.3)])
    assert reported.values('mIoU') == [41.9, 41.4, 41.3]
    assert reported.values('mIoU', 'report') == [41.9, 41.4, 41.3]
    assert reported.values('mIoU', 'selection') == [33.6, 33.2]
    assert reported.values('aAcc', 'selection') == []
    with pytest.raises(ValueError, match="split must be 'report' or "
                       "'selection', got 'val'"):
        reported.values('mIoU', 'val')


def test_choice_follows_the_selection_numbers(tmp_path):
    """The committed records decide: LDAM's s=5 while its selection number
    is the larger, s=1 once s=1's record says more; a loss without runs
    has no choice."""
    results = tmp_path / 'results'
    st = camvid_study(results_dir=str(results))
    iou = [float(i) for i in range(11)]
    fake_record(results, st, C('ldam', 0, 's1-drw'), 40.0, 10.0, iou)
    fake_record(results, st, C('ldam', 0, 's5-drw'), 42.0, 12.0, iou)
    sel = gather(st).selections()
    assert set(sel) == {('camvid', 'unet', 'ldam')}
    assert sel[('camvid', 'unet', 'ldam')].variant == 's5-drw'
    assert sel[('camvid', 'unet', 'ldam')].complete
    fake_record(results, st, C('ldam', 0, 's1-drw'), 44.0, 10.0, iou)
    sel = gather(st).selections()[('camvid', 'unet', 'ldam')]
    assert sel.variant == 's1-drw'
    assert sel.scores == {'s1-drw': 44.0, 's5-drw': 42.0}


@pytest.mark.parametrize('values, mean, std', [
    ([40.0], 40.0, None), ([40.0, 42.0], 41.0, 2**0.5),
    ([1.0, 2.0, 3.0, 4.0], 2.5, (5 / 3)**0.5)])
def test_mean_and_sample_std(values, mean, std):
    m, s = mean_std(values)
    assert m == pytest.approx(mean)
    assert s is None if std is None else s == pytest.approx(std)
