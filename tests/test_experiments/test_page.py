"""mmseg_longtail.experiments.page: the CamVid CPU study's results page from
hand-made run records (tools/collect_results.py --page), every number
checked against a computation here from the record files (the selection as
the argmax of the selection-split means; means and stds; the comparison
with CE); the selection never reads the report split; the seed-noise rule;
the page of a study without runs."""
import json
import math
import re
import statistics

import pytest

from mmseg_longtail.experiments import gather, run_name
from mmseg_longtail.experiments.page import (BEYOND_NOISE, WITHIN_NOISE,
                                             StudyPage, compare_with_reference,
                                             noise_mark, seed_noise)
from tests.test_experiments.helpers import (CARVED_TRAIN_PIXELS, CLASSES, SPEC,
                                            TAIL, TITLES, C, camvid_study,
                                            check_columns, chosen_settings,
                                            column, expected_selection,
                                            fake_study_records, labels,
                                            md_tables, mean_std_text, numbers,
                                            raw_records, reported_values, row,
                                            run_in_process, section,
                                            setting_runs, table_after)


@pytest.fixture(scope='module')
def camvid_page(tmp_path_factory):
    """The page of 10 finished runs (helpers.fake_study_records) and three
    work dirs without records (one running, one failed, one of another
    study): (markdown, raw records, study, page path, work root)."""
    tmp = tmp_path_factory.mktemp('page')
    results = tmp / 'results'
    st = camvid_study(results_dir=str(results))
    fake_study_records(results, st)
    root = tmp / 'camvid_study'
    for cell, state, study in ((C('ldam', 0, 's1-drw'), 'running', ''),
                               (C('blv', 0, 'sigma2'), 'failed', ''),
                               (C('pat', 0, 'tau2'), 'done', 'other')):
        run = root / (study + run_name(st, cell))
        run.mkdir(parents=True)
        (run / 'grid_status.json').write_text(json.dumps(dict(
            cell=cell.to_dict(), state=state, study=study)))
    page = tmp / 'docs' / 'camvid.md'
    out = run_in_process(['tools/collect_results.py', '--study', SPEC,
                          root, '--results-dir', results, '--page',
                          page]).stdout
    assert '10 finished runs' in out
    return page.read_text(), raw_records(results), st, page, root


def test_header_counts_and_commands(camvid_page):
    md, _, st, page, root = camvid_page
    assert md.startswith(f'# {st.title}\n')
    # 27 planned runs, plus seeds 1 and 2 of Focal and BMS, whose sweeps
    # finished; the other ten swept losses wait for theirs
    assert numbers(r'(\d+) of (\d+) runs', md) == (10, 31)
    assert numbers(r'(\d+) groups wait', md) == (10, )
    # the reproduce and regenerate commands
    assert f'python tools/grid.py --study {SPEC}' in md
    assert (f'python tools/collect_results.py --study {SPEC} {root} '
            f'--page {page}') in md


def test_setup_table(camvid_page):
    md, _, st, _, _ = camvid_page
    setup = dict(re.findall(r'^\| ([a-z ]+) \| (.*) \|$',
                            section(md, '## Setup'), re.M))
    assert list(setup) == ['data', 'selection split', 'report split',
                           'input', 'models', 'schedule', 'seeds', 'losses']
    # the carve: its group pattern, 101/367 of the files, its seed, and
    # where its lists are
    sel = setup['selection split']
    assert '`^([0-9A-Za-z]+)_`' in sel and '28%' in sel
    assert 'seed 0' in sel and 'splits/camvid' in sel
    # val, not the selection split: no note that nothing is held out
    assert setup['report split'] == '`val`'
    assert '`configs/camvid_study/models/unet-s5-c8.py`' in setup['models']
    assert setup['models'].startswith('UNet-c8: ')
    assert '2400 iterations' in setup['schedule']
    assert '`configs/camvid_study/camvid_144x192.py`' in setup['input']
    # the seeds of every setting, then each loss's selected setting's
    assert setup['seeds'].startswith('0 ')
    assert re.findall(r'(\w[\w ]*?) 0, 1, 2', setup['seeds']) == list(
        TITLES.values())
    # each loss's base and its settings' labels, in the spec's order
    losses = setup['losses'].split('; ')
    assert [x.split(':')[0] for x in losses
            if re.match(r'[\w ]+: `', x)] == list(TITLES.values())
    assert losses[0] == 'CE: `configs/_base_/losses/ce.py`'
    assert ('LDAM: `configs/_base_/losses/ldam.py` swept over `s=1, DRW`'
            in setup['losses'])
    assert '`s=5, DRW`' in setup['losses']
    assert ('CB: `configs/_base_/losses/cb.py` swept over `beta=median`'
            in setup['losses'])
    assert '`beta=0.9999, image counts`' in setup['losses']
    # the frequency groups of the records
    groups = dict(re.findall(r'(head|body|tail) = ([^;.]+)', md))
    assert groups == dict(head='Sky, Building, Road, Tree',
                          body='Pavement, SignSymbol, Car',
                          tail='Pole, Fence, Pedestrian, Bicyclist')


def test_selection_table(camvid_page):
    """Each setting's mean selection mIoU over the sweep seed, the argmax in
    bold (computed here from the records), noted while its sweep is
    unfinished; blank where nothing ran; CE (one setting) not listed."""
    md, raw, st, _, _ = camvid_page
    expected = expected_selection(st, raw)
    assert set(expected) == {'ce', 'focal', 'bms', 'pat', 'cb'}
    table = table_after(section(md, '## Selection'))
    assert table[0] == ['Setting', 'UNet-c8']
    assert labels(table) == [lo.label(v) for lo in st.losses.values()
                             if len(lo.variants) > 1 for v in lo.variants]
    for lo, loss in st.losses.items():
        if len(loss.variants) < 2:
            continue
        chosen, means = expected.get(lo, (None, {}))
        complete = len(means) == len(loss.variants)
        for v in loss.variants:
            cell = row(table, loss.label(v))
            if v.tag not in means:
                assert cell == ['']
            elif v.tag == chosen:
                assert cell == [f'**{means[v.tag]:.2f}' + (
                    '' if complete else ' (so far)') + '**']
            else:
                assert cell == [f'{means[v.tag]:.2f}']
    # the choices the records force: Focal gamma=1 (45 over 44) although
    # gamma=2 is better on the report split (43 over 41.5); BMS tau=0.5 on
    # its sweep seed only (50 over 48, seed 1's 47 left out)
    assert expected['focal'][0] == 'gamma1' and expected['bms'] == (
        'tau0p5', dict(tau0p5=50.0, tau1=48.0))


def test_results_tables(camvid_page):
    """Loss x model mIoU and the per-model metrics table: the selected
    setting's mean ± sample std over its seeds on the report split, from
    the records, the best mean bold; the report numbers of settings not
    chosen appear nowhere."""
    md, raw, st, _, _ = camvid_page
    results = section(md, '## Results')
    chosen = chosen_settings(st, raw)
    table4, metrics = md_tables(results)
    assert table4[0] == ['Loss', 'UNet-c8']
    assert labels(table4) == labels(metrics) == [
        chosen[lo][1] if lo in chosen else TITLES[lo] for lo in st.losses]
    check_columns(table4, {
        label: [reported_values(raw, lo, tag, 'mIoU')]
        for lo, (tag, label) in chosen.items()})
    for lo, (tag, label) in chosen.items():
        assert row(metrics, label)[-1] == ', '.join(
            str(r['cell']['seed']) for r in setting_runs(raw, lo, tag))
    check_columns(metrics, {
        label: [reported_values(raw, lo, tag, key) for key in (
            'mIoU', 'aAcc', 'mDice', 'mIoU_head', 'mIoU_body', 'mIoU_tail')]
        for lo, (tag, label) in chosen.items()})
    assert row(table4, 'BMS (tau=0.5)') == [
        f'**49.50 ± {math.sqrt(0.5):.2f}**']
    for title in ('CBFocal', 'LDAM', 'BLV'):
        assert row(table4, title) == ['']
        assert set(row(metrics, title)) == {''}
    assert metrics[0] == ['Loss', 'mIoU', 'aAcc', 'mDice', 'head', 'body',
                          'tail', 'seeds']
    assert row(metrics, 'CE') == [
        '41.00 ± 1.00', '80.00 ± 0.00', '51.00 ± 1.00', '70.00 ± 0.00',
        '40.00 ± 0.00', '11.00 ± 1.00', '0, 1, 2']
    # Focal gamma=2's and BMS tau=1's report mIoU (43, 52) and mDice
    for number in ('43.00', '53.00', '52.00', '62.00'):
        assert number not in results


def test_seed_spread(camvid_page):
    """Every seed of the selected settings with two or more finished."""
    md, raw, st, _, _ = camvid_page
    table = table_after(section(md, '## Seed spread'))
    want = []
    for lo, (tag, label) in chosen_settings(st, raw).items():
        runs = setting_runs(raw, lo, tag)
        if len(runs) < 2:
            continue
        want.append(f'UNet-c8 | {label}')
        assert row(table, f'UNet-c8 | {label}') == [
            ', '.join(f'{r["cell"]["seed"]}: '
                      f'{r["report"]["summary"]["mIoU"]:.2f}' for r in runs),
            mean_std_text(reported_values(raw, lo, tag, 'mIoU')),
            mean_std_text(reported_values(raw, lo, tag, 'mIoU_tail'))]
    assert labels(table, 2) == want == ['UNet-c8 | CE',
                                        'UNet-c8 | BMS (tau=0.5)']
    assert row(table, 'UNet-c8 | CE') == [
        '0: 40.00, 1: 42.00, 2: 41.00', '41.00 ± 1.00', '11.00 ± 1.00']


def test_comparison_with_ce(camvid_page):
    """Differences from CE, the pooled std and the noise mark, each
    computed here from the records."""
    md, raw, st, _, _ = camvid_page
    comp = section(md, '## Comparison with CE')
    pooled = table_after(comp)
    per_model = table_after(comp, '**UNet-c8**')
    chosen = chosen_settings(st, raw)
    marks = set()
    for i, (key, title) in enumerate((('mIoU', 'mIoU'),
                                      ('mIoU_tail', 'tail mIoU'))):
        values = {lo: reported_values(raw, lo, tag, key)
                  for lo, (tag, _) in chosen.items()}
        varied = [v for v in values.values() if len(v) > 1]
        sigma = math.sqrt(statistics.mean(statistics.variance(v)
                                          for v in varied))
        ce = statistics.mean(values['ce'])
        assert row(pooled, f'UNet-c8 | {title}') == [
            f'{sigma:.2f}', str(sum(len(v) - 1 for v in varied)),
            f'{math.sqrt(2) * sigma:.2f}', str(len(varied))]
        for lo, (tag, label) in chosen.items():
            if lo == 'ce':
                continue
            diff = statistics.mean(values[lo]) - ce
            mark = (BEYOND_NOISE if abs(diff) > math.sqrt(2) * sigma
                    else WITHIN_NOISE)
            marks.add(mark)
            assert row(per_model, label)[3 * i:3 * i + 3] == [
                f'{diff:+.2f}', f'{sigma:.2f}', mark]
    # the records exercise both sides of the rule
    assert marks == {WITHIN_NOISE, BEYOND_NOISE}
    assert labels(per_model) == [label for lo, (_, label) in chosen.items()
                                 if lo != 'ce']


def test_per_class_table_and_plots(camvid_page):
    """Classes from frequent to rare with their group and share; each
    cell the mean ± std of the chosen setting's seeds; the plots beside
    the page."""
    md, raw, st, page, _ = camvid_page
    per_class = section(md, '## Per-class IoU')
    table = table_after(per_class, '**UNet-c8**')
    order = sorted(range(11), key=lambda i: -CARVED_TRAIN_PIXELS[i])
    total = sum(CARVED_TRAIN_PIXELS)
    group = {i: g for g, ids in dict(H=[0, 1, 3, 5], B=[4, 6, 8],
                                     T=[2, 7, 9, 10]).items() for i in ids}
    assert table[0][1:] == [
        f'{CLASSES[i]} ({group[i]}, '
        f'{100 * CARVED_TRAIN_PIXELS[i] / total:.1f}%)' for i in order]
    expected = {label: [[r['report']['per_class_iou'][i]
                         for r in setting_runs(raw, lo, tag)]
                        for i in order]
                for lo, (tag, label) in chosen_settings(st, raw).items()}
    check_columns(table, expected)
    # Road is class 3: mean of 3, 5 and 4, the best of its column
    assert row(table, 'CE')[0] == '**4.00 ± 1.00**'
    assert set(row(table, 'LDAM')) == {''}
    assert sorted(p.name for p in page.parent.glob('camvid_class_iou_*')) \
        == ['camvid_class_iou_unet.png']
    assert (page.parent / 'camvid_class_iou_unet.png').read_bytes()[:4] == \
        b'\x89PNG'
    assert '](camvid_class_iou_unet.png)' in md
    # curves: CE and the best loss (BMS)
    assert (page.parent / 'camvid_curves_unet.png').read_bytes()[:4] == \
        b'\x89PNG'
    assert '](camvid_curves_unet.png)' in section(md, '## Training curves')


def test_runs_table(camvid_page):
    """Wall time, the spread of the last three evaluations and its
    convergence mark, not-run-yet rows, the running and the failed one;
    the totals of the finished runs."""
    md, raw, st, _, root = camvid_page
    runs = section(md, '## Runs')
    table, totals = md_tables(runs)
    assert table[0] == ['Run', 'model', 'loss', 'seed', 'status', 'iters',
                        'wall', 'train s/iter', 'last 3', 'converged',
                        'selection mIoU', 'report mIoU', 'report tail']
    status = column(table, 'status')
    assert len(status) == 31
    assert sorted(status.values()).count('not run yet') == 31 - 10 - 2
    assert sorted(status.values()).count('done') == 10
    assert row(table, f'ce{TAIL}_seed1') == [
        'UNet-c8', 'CE', '1', 'done', '2400', '8:20', '0.50', '0.50', 'yes',
        '42.00', '42.00', '12.00']
    assert row(table, f'focal-gamma2{TAIL}_seed0') == [
        'UNet-c8', 'Focal (gamma=2)', '0', 'done', '2400', '5:00', '0.50',
        '3.00', 'no', '44.00', '43.00', '11.00']
    assert row(table, f'cb-b0.9999-img{TAIL}_seed0') == [
        'UNet-c8', 'CB (beta=0.9999, image counts)', '0', 'done', '2400',
        '5:00', '0.50', '', 'too few', '40.00', '40.00', '10.00']
    assert row(table, f'focal-gamma1{TAIL}_seed2') == [
        'UNet-c8', 'Focal (gamma=1)', '2', 'not run yet'] + [''] * 8
    assert row(table, f'ldam-s1-drw{TAIL}_seed0')[:4] == [
        'UNet-c8', 'LDAM (s=1, DRW)', '0', 'running']
    assert row(table, f'blv-sigma2{TAIL}_seed0')[:4] == [
        'UNet-c8', 'BLV (sigma=2)', '0', 'failed']
    # every record's numbers in its row
    for r in raw:
        cells = {h: column(table, h)[r['name']] for h in table[0][1:]}
        assert cells['selection mIoU'] == (
            f'{r["selection"]["summary"]["mIoU"]:.2f}')
        assert cells['report mIoU'] == f'{r["report"]["summary"]["mIoU"]:.2f}'
    # 10 finished, 8 converged; 9 runs of 300 s and one of 500 s
    assert totals[1:] == [['10', '8', '53:20', '5:20', '5:00', '8:20']]
    # the work dir of another study: not a run of this one, listed apart
    assert status[f'pat-tau2{TAIL}_seed0'] == 'not run yet'
    other = root / f'otherpat-tau2{TAIL}_seed0'
    assert re.findall(r'^- (/\S+): ', runs, re.M) == [str(other)]


def test_selection_never_reads_the_report_split(tmp_path):
    """The same records with their report numbers reversed (a setting's
    report mIoU becomes 100 minus it, its per-class IoU reversed) give
    the same choices and the same selection section; the report tables do
    change."""
    pages = {}
    for name in ('as_run', 'perturbed'):
        results = tmp_path / name / 'results'
        st = camvid_study(results_dir=str(results))
        fake_study_records(results, st)
        if name == 'perturbed':
            for path in (results / 'runs').glob('*.json'):
                raw = json.loads(path.read_text())
                rep = raw['report']
                rep['summary'] = {k: 100.0 - v for k, v in
                                  rep['summary'].items()}
                rep['per_class_iou'] = rep['per_class_iou'][::-1]
                path.write_text(json.dumps(raw))
        page = StudyPage(gather(st), str(tmp_path / name / 'camvid.md'))
        pages[name] = (page, page.write())
    (a, md_a), (b, md_b) = pages['as_run'], pages['perturbed']
    assert {g: (s.variant, s.scores, s.complete)
            for g, s in a.tables.selections.items()} == {
                g: (s.variant, s.scores, s.complete)
                for g, s in b.tables.selections.items()}
    assert section(md_a, '## Selection') == section(md_b, '## Selection')
    assert row(table_after(section(md_a, '## Results')), 'CE') == [
        '41.00 ± 1.00']
    assert row(table_after(section(md_b, '## Results')), 'CE') == [
        '59.00 ± 1.00']


def test_page_without_any_run(tmp_path):
    page = tmp_path / 'camvid.md'
    # an empty work root: not the study's default, where runs may be going
    (tmp_path / 'work').mkdir()
    run_in_process(['tools/collect_results.py', '--study', SPEC,
                    tmp_path / 'work', '--results-dir', tmp_path / 'none',
                    '--page', page])
    md = page.read_text()
    assert numbers(r'(\d+) of (\d+) runs', md) == (0, 27)
    assert numbers(r'(\d+) groups wait', md) == (12, )
    runs = md_tables(section(md, '## Runs'))
    # the runs table only: no totals of finished runs
    assert len(runs) == 1
    assert list(column(runs[0], 'status').values()) == ['not run yet'] * 27
    assert row(runs[0], f'pat-tau2{TAIL}_seed0')[:3] == [
        'UNet-c8', 'PAT (tau=2)', '0']
    # nothing finished: no seed spread, no comparison with CE, no per-class
    # table, no curves
    headings = re.findall(r'^## (.*)$', md, re.M)
    assert headings == ['Setup', 'Results', 'Selection', 'Runs']
    # the selection table lists every setting, none scored yet
    sel = table_after(section(md, '## Selection'))
    assert len(sel) == 1 + 24
    assert row(sel, 'LDAM (s=5, DRW)') == [''] and row(sel,
                                                       'PAT (tau=2)') == ['']
    for table in md_tables(section(md, '## Results')):
        assert set(row(table, 'BMS')) <= {''}


# ------------------------------------------------------------ noise rule
@pytest.mark.parametrize(
    'values, sigma, dof, diffs',
    [
        # CE 40, 42 (std 1.41, √2σ 2.00): PAT +1 within, BMS +3 beyond
        (dict(ce=[40.0, 42.0], pat=[42.0], bms=[44.0]), math.sqrt(2), 1,
         dict(pat=(1.0, WITHIN_NOISE), bms=(3.0, BEYOND_NOISE))),
        # a tail IoU of 0 in every seed: zero noise; an equal mean is no
        # difference, any other is beyond it
        (dict(ce=[0.0, 0.0], pat=[0.0], bms=[1.8]), 0.0, 1,
         dict(pat=(0.0, WITHIN_NOISE), bms=(1.8, BEYOND_NOISE))),
        # stds pooled over two losses with 3 seeds each (√2σ = 1.41); a
        # loss without values is left out
        (dict(ce=[40.0, 41.0, 42.0], pat=[39.0, 40.0, 41.0], bms=[40.5],
              cb=[]), 1.0, 4,
         dict(pat=(-1.0, WITHIN_NOISE), bms=(-0.5, WITHIN_NOISE))),
        # no loss with two seeds: differences without a mark
        (dict(ce=[40.0], pat=[43.0]), None, None, dict(pat=(3.0, None))),
        # no CE: no differences
        (dict(pat=[40.0, 42.0]), math.sqrt(2), 1, {}),
    ])
def test_compare_with_reference_case_table(values, sigma, dof, diffs):
    noise, out = compare_with_reference(values, 'ce')
    if sigma is None:
        assert noise is None
    else:
        assert noise.sigma == pytest.approx(sigma) and noise.dof == dof
    assert set(out) == set(diffs)
    for lo, (diff, mark) in diffs.items():
        assert out[lo][0] == pytest.approx(diff) and out[lo][1] == mark


@pytest.mark.parametrize('difference, expected', [
    # the band is √2σ = 1.41 for σ = 1: its edge is within
    (1.0, WITHIN_NOISE), (-1.0, WITHIN_NOISE), (math.sqrt(2), WITHIN_NOISE),
    (1.42, BEYOND_NOISE), (-1.42, BEYOND_NOISE), (0.0, WITHIN_NOISE)])
def test_noise_mark_rule(difference, expected):
    assert noise_mark(difference, seed_noise(
        dict(ce=[40.0, 41.0, 42.0]))) == expected


@pytest.mark.parametrize(
    'values, sigma, dof',
    [
        # one loss with seeds: its own sample std
        (dict(ce=[40.0, 42.0], pat=[30.0]), math.sqrt(2), 1),
        # stds 1 and 3 pooled as the root mean square, not the mean (2)
        (dict(ce=[40.0, 41.0, 42.0], pat=[37.0, 40.0, 43.0]), math.sqrt(5),
         4),
        # no loss with two seeds: no estimate at all
        (dict(ce=[40.0], pat=[30.0]), None, None),
    ])
def test_seed_noise_case_table(values, sigma, dof):
    noise = seed_noise(values)
    if sigma is None:
        assert noise is None
        return
    assert noise.sigma == pytest.approx(sigma)
    assert noise.dof == dof
    assert set(noise.stds) == {lo for lo, v in values.items() if len(v) > 1}
    # two single runs differ by sqrt(2) sigma; means of 4 seeds by half that
    assert noise.of_difference() == pytest.approx(math.sqrt(2) * sigma)
    assert noise.of_difference(4) == pytest.approx(sigma / math.sqrt(2))
