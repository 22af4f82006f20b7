"""mmseg_longtail.experiments.tables: the paper tables from collected runs
(selected variant on the selection split, report split numbers as mean ±
std over seeds, blanks for missing runs) in markdown, CSV and LaTeX, and
tools/collect_results.py writing them."""
import csv
import io

import pytest

from mmseg_longtail.experiments.tables import Table, curve_spread, fmt_mean_std
from tests.conftest import run_tool
from tests.test_experiments.test_collect import (CAMVID_CLASSES, STEM,
                                                 metric_json, results, status,
                                                 work_root)

__all__ = ['work_root']  # the fixture, imported for this module's tests


def rows(table):
    return {label: values for label, values, _, _ in table.rows}


def test_tables_report_the_selected_variant(work_root, tmp_path):
    from mmseg_longtail.experiments.tables import PaperTables
    root, iou_ce = work_root
    tables = PaperTables(results(root, tmp_path))
    assert [t.name for t in tables.build()] == [
        'table3_unet', 'table4_camvid', 'table6_camvid_unet', 'groups_unet',
        'selection_camvid', 'runs']
    # PAT: tau=2 (35 on the selection split) beats tau=5 (30) although its
    # report mIoU is lower: the report split never steers the choice
    sel = tables.selections[('camvid', 'unet', 'pat')]
    assert sel.variant == 'tau2' and not sel.complete
    assert sel.scores == dict(tau1=None, tau2=35.0, tau5=30.0)
    t3 = rows(tables.table3('unet'))
    assert list(t3)[:3] == ['CE', 'Focal', 'CB']
    assert t3['CE'][('', 'mIoU')] == [pytest.approx(15.0)]
    assert t3['PAT (tau=2)'][('', 'mIoU')] == [20.0]
    assert t3['Focal'][('', 'mIoU')] is None
    t4 = tables.table4('camvid')
    assert t4.header() == ['Loss', 'UNet']  # failed / running: absent
    assert '| PAT (tau=2) | **20.00** |' in t4.to_markdown()
    assert '| CE | 15.00 |' in t4.to_markdown()
    t6 = rows(tables.table6('camvid', 'unet'))
    assert [t6['CE'][('', c)] for c in CAMVID_CLASSES] == [[x]
                                                           for x in iou_ce]
    assert rows(tables.groups('unet'))['CE'][('', 'mIoU_tail')] == [30.0]
    # the selection table: every setting's score, the chosen one bold
    md = tables.selection('camvid').to_markdown()
    assert '| PAT (tau=2) | **35.00 (so far)** |' in md
    assert '| PAT (tau=5) | 30.00 |' in md and '| PAT (tau=1) |  |' in md


def test_seeds_give_mean_and_std(work_root, tmp_path):
    from mmseg_longtail.experiments.tables import PaperTables
    root, _ = work_root
    for seed, miou in ((1, 17.0), (2, 19.0)):
        run = root / f'ce_{STEM}_seed{seed}'
        status(run, 'ce', seed=seed)
        metric_json(run, 'val', [50.0] * 11, [50.0] * 11)
        metric_json(run, 'test', [miou] * 11, [50.0] * 11)
    tables = PaperTables(results(root, tmp_path))
    t4 = tables.table4('camvid')
    values = rows(t4)['CE'][('', 'UNet')]
    assert sorted(values) == [pytest.approx(15.0), 17.0, 19.0]
    # mean 17, sample std 2
    assert '| CE | 17.00 ± 2.00 |' in t4.to_markdown()
    metrics = rows(tables.metrics('camvid', 'unet'))
    assert metrics['CE'][('', 'seeds')] == '0, 1, 2'


def test_runs_table_and_renderings(work_root, tmp_path):
    from mmseg_longtail.experiments.cells import Cell
    from mmseg_longtail.experiments.tables import PaperTables
    root, _ = work_root
    tables = PaperTables(results(root, tmp_path))
    planned = [Cell('camvid', 'unet', 'focal', 'gamma2', 0)]
    csv_rows = list(csv.reader(io.StringIO(tables.runs(planned).to_csv())))
    by_name = {r[0]: dict(zip(csv_rows[0], r)) for r in csv_rows[1:]}
    ce = by_name[f'ce_{STEM}_seed0']
    assert ce['wall'] == '1:02:05' and ce['iters'] == '30000'
    assert ce['report mIoU'] == '15.00' and ce['selection mIoU'] == '99.00'
    assert ce['converged'] == 'too few' and ce['train s/iter'] == '0.60'
    assert by_name['ce_deeplabv3_seed0']['status'] == 'failed'
    assert by_name['ce_attunet_seed0']['report mIoU'] == ''
    assert [r['status'] for n, r in by_name.items()
            if n.startswith('focal')] == ['not run yet']
    tex = tables.table3('unet').to_latex()
    assert r'PAT (tau=2) & \textbf{20.00} & 80.00 & \textbf{0.6000} \\' \
        in tex
    assert r'CE & 15.00 & \textbf{90.00} & 0.7500 \\' in tex
    assert r'Focal &  &  &  \\' in tex
    assert r'ce\_' + STEM.replace('_', r'\_') in tables.runs().to_latex()

    out = tmp_path / 'tables'
    printed = run_tool(['tools/collect_results.py', root, '--results-dir',
                        tmp_path / 'no_records', '--out-dir', out]).stdout
    files = sorted(p.name for p in out.iterdir())
    assert 'table3_unet.tex' in files and 'runs.csv' in files
    assert len(files) == 6 * 3
    assert '3 finished runs, 2 unfinished or failed' in printed


@pytest.mark.parametrize('values, fmt, text', [
    ([], '{:.2f}', ''), ([1.0], '{:.2f}', '1.00'),
    ([1.0, 3.0], '{:.1f}', '2.0 ± 1.4'),
    ([2.0, 2.0], '{:.2f}', '2.00 ± 0.00')])
def test_fmt_mean_std(values, fmt, text):
    assert fmt_mean_std(values, fmt) == text


def test_table_best_and_marks():
    t = Table('t', 'T', 'Loss', [('', ['a', 'b'])], dict(a='a', b='b'),
              dict(a=('{:.1f}', True), b=('{:.1f}', False)))
    t.add_row('x', {('', 'a'): [1.0, 3.0], ('', 'b'): 5.0})
    t.add_row('y', {('', 'a'): 1.5, ('', 'b'): 4.0}, marks=[('', 'a')])
    t.add_row('z', {('', 'a'): None, ('', 'b'): float('nan')})
    md = t.to_markdown(title=False)
    assert '| x | **2.0 ± 1.4** | 5.0 |' in md  # best mean of a
    assert '| y | **1.5** | **4.0** |' in md  # marked; lowest b
    assert '| z |  |  |' in md


@pytest.mark.parametrize('curve, spread', [
    ([80.0] * 5, None), ([10.0, 20.0, 30.0, 50.0, 50.5, 49.9], 0.6),
    ([1.0] * 8 + [3.0], 2.0)])
def test_curve_spread(curve, spread):
    got = curve_spread([dict(iter=i, mIoU=v) for i, v in enumerate(curve)])
    assert got == (None if spread is None else pytest.approx(spread))
