"""An end-to-end sweep on the synthetic data (real Runner, tools/grid.py):
2 losses x 2 variants x 2 seeds. The chosen variant is the one with the
best mean selection metric (computed here from the runs' own metric files),
the reported numbers are those of the report split, and the page
regenerates from the committed records in a fresh folder with no work
dirs."""
import json
import re
import shutil
import statistics
from pathlib import Path

import pytest

from tests.test_experiments.helpers import (column, numbers, row,
                                            run_in_process, table_after)

DATA = Path(__file__).parent / 'data' / 'synthetic_sweep.py'
# the tools' main() in this process: no interpreter start-up per call
run_tool = run_in_process
SHORT = ['default_hooks.logger.interval=1', 'train_cfg.max_iters=3',
         'train_cfg.val_interval=1', 'default_hooks.checkpoint.interval=3']
VARIANTS = dict(focal=('gamma0p5', 'gamma3'), pat=('tau1', 'tau5'))
TITLES = dict(focal='Focal', pat='PAT')
OPTIONS = dict(gamma0p5='gamma=0.5', gamma3='gamma=3', tau1='tau=1',
               tau5='tau=5')


def write_spec(folder: Path) -> Path:
    spec = folder / 'sweep_spec.py'
    spec.write_text(f'''
name = 'sweep_test'
title = 'Sweep test'
datasets = dict(syn=dict(base={str(DATA)!r}, name='syn', title='Synthetic'))
models = dict(unet=dict(base='mmseg_longtail::_base_/models/unet.py',
                        name='unet', title='UNet', size_divisor=16))
losses = dict(
    focal=dict(base='mmseg_longtail::_base_/losses/focal.py', name='focal',
               title='Focal', sweep=dict(gamma=[0.5, 3.0])),
    pat=dict(base='mmseg_longtail::_base_/losses/pat.py', name='pat',
             title='PAT', sweep=dict(tau=[1.0, 5.0])))
schedule = dict(base='mmseg_longtail::_base_/schedules/schedule_30k.py')
seeds = [0, 1]
work_root = {str(folder / 'work')!r}
results_dir = {str(folder / 'results')!r}
page = {str(folder / 'page.md')!r}
''')
    return spec


def _metric(run: Path, stage: str) -> dict:
    return json.loads(
        (run / 'longtail_metrics' / f'latest_{stage}.json').read_text())


@pytest.fixture(scope='module')
def sweep(tmp_path_factory):
    folder = tmp_path_factory.mktemp('sweep')
    spec = write_spec(folder)
    out = run_tool(['tools/grid.py', '--study', spec, '--cfg-options'] +
                   SHORT).stdout
    return folder, spec, out


def _mean(xs):
    return sum(xs) / len(xs)


def _numbers(cell: str) -> list:
    """The numbers of a table cell (``**41.20 ± 0.35**``: 41.2, 0.35)."""
    return [float(x) for x in re.findall(r'-?\d+\.\d+', cell)]


def test_selection_and_report(sweep):
    folder, spec, out = sweep
    assert '8 cells selected' in out
    work = folder / 'work'
    records = sorted((folder / 'results' / 'runs').glob('*.json'))
    assert len(records) == 8
    # names carry the variant readably
    assert (work / 'focal-gamma0p5_unet_1xb2-30k_syn-32x32_seed1').is_dir()
    chosen, sel_means = {}, {}
    for loss, tags in VARIANTS.items():
        sel, rep = {}, {}
        for tag in tags:
            runs = [work / f'{loss}-{tag}_unet_1xb2-30k_syn-32x32_seed{s}'
                    for s in (0, 1)]
            vals = [_metric(r, 'val') for r in runs]
            tests = [_metric(r, 'test') for r in runs]
            # the selection split is val (4 images), the report split test
            # (6 other images): their label areas differ
            for v, t in zip(vals, tests):
                assert v['stage'] == 'val' and t['stage'] == 'test'
                assert v['iter'] == 3
                assert sum(v['areas']['label']) != sum(t['areas']['label'])
            sel[tag] = _mean([v['summary']['mIoU'] for v in vals])
            rep[tag] = [t['summary']['mIoU'] for t in tests]
            # the record holds both splits and the validation curve
            rec = json.loads((folder / 'results' / 'runs' /
                              f'{runs[0].name}.json').read_text())
            assert rec['selection']['summary']['mIoU'] == \
                vals[0]['summary']['mIoU']
            assert rec['report']['summary']['mIoU'] == \
                tests[0]['summary']['mIoU']
            assert [p['iter'] for p in rec['curve']] == [1, 2, 3]
            # the report split carries per-image mIoU and the bootstrap
            # interval over its images (the study's default); the
            # selection split stays cheap
            report = rec['report']
            assert report['bootstrap']['samples'] == 1000
            assert report['bootstrap']['seed'] == 0
            assert report['bootstrap']['mIoU'] == [
                report['summary']['mIoU_ci_low'],
                report['summary']['mIoU_ci_high']]
            assert report['bootstrap'] == tests[0]['bootstrap']
            assert len(report['per_image_miou']) == 6
            assert rec['selection']['bootstrap'] is None
            assert 'mIoU_ci_low' not in rec['selection']['summary']
        best = max(tags, key=lambda t: (sel[t], -tags.index(t)))
        chosen[loss] = (best, rep[best])
        sel_means[loss] = sel

    out = run_tool(['tools/collect_results.py', '--study', spec,
                    '--tables', 'table4', 'selection']).stdout
    table4 = table_after(out, '**Table 4')
    selection = table_after(out, '**Selection')
    assert table4[0] == ['Loss', 'UNet']
    assert selection[0] == ['Setting', 'UNet']
    for loss, (tag, reports) in chosen.items():
        label = f'{TITLES[loss]} ({OPTIONS[tag]})'
        # the chosen setting's report mean ± std over its two seeds
        assert _numbers(row(table4, label)[0]) == pytest.approx(
            [_mean(reports), statistics.stdev(reports)], abs=0.006)
        # the selection table: every setting's selection mean, the chosen
        # one bold, the sweep complete (no note)
        for t in VARIANTS[loss]:
            cell = row(selection, f'{TITLES[loss]} ({OPTIONS[t]})')[0]
            assert (cell.startswith('**') and cell.endswith('**')) == (
                t == tag)
            assert float(cell.strip('*')) == pytest.approx(
                sel_means[loss][t], abs=0.006)


def test_tail_selection_option(sweep):
    folder, spec, _ = sweep
    work = folder / 'work'
    out = run_tool(['tools/collect_results.py', '--study', spec,
                    '--select-metric', 'mIoU_tail', '--tables',
                    'selection']).stdout
    selection = table_after(out, '**Selection')
    for loss, tags in VARIANTS.items():
        tails = {t: _mean([_metric(
            work / f'{loss}-{t}_unet_1xb2-30k_syn-32x32_seed{s}',
            'val')['summary']['mIoU_tail'] for s in (0, 1)]) for t in tags}
        best = max(tags, key=lambda t: (tails[t], -tags.index(t)))
        for t in tags:
            cell = row(selection, f'{TITLES[loss]} ({OPTIONS[t]})')[0]
            assert cell.startswith('**') == (t == best), (loss, t, cell)
            assert float(cell.strip('*')) == pytest.approx(tails[t],
                                                           abs=0.006)


def test_page_regenerates_from_records_alone(sweep, tmp_path):
    folder, spec, _ = sweep
    page = tmp_path / 'with_work' / 'page.md'
    run_tool(['tools/collect_results.py', '--study', spec, '--page', page])
    # a fresh folder: the records only, no work dirs
    fresh = tmp_path / 'fresh'
    shutil.copytree(folder / 'results', fresh / 'results')
    fresh_page = fresh / 'page.md'
    out = run_tool(['tools/collect_results.py', '--study', spec,
                    '--results-dir', fresh / 'results', '--page',
                    fresh_page]).stdout
    assert 'wrote' in out

    def body(p):
        text = p.read_text()
        text = re.sub(r'\(\d{4}-\d\d-\d\d \d\d:\d\d; run records in `[^`]*`',
                      '', text)
        return re.sub(r'--results-dir \S+|--page \S+', '', text)
    md = fresh_page.read_text()
    assert numbers(r'(\d+) of (\d+) runs', md) == (8, 8)
    # the chosen settings, as computed from the records
    chosen_tags = {}
    for loss, tags in VARIANTS.items():
        sel = {t: _mean([json.loads((
            folder / 'results' / 'runs' / f'{loss}-{t}_unet_1xb2-30k_syn-'
            f'32x32_seed{s}.json').read_text())['selection']['summary'][
                'mIoU'] for s in (0, 1)]) for t in tags}
        chosen_tags[loss] = max(tags, key=lambda t: (sel[t], -tags.index(t)))
    assert '## Selection' in md and '## Training curves' in md
    assert body(page) == body(fresh_page)
    # the intervals over images: the chosen settings' rows of the model's
    # metrics table hold the mean ± std of their seeds' bounds
    metrics = table_after(md.split('## Results')[1], '**UNet**')
    runs = folder / 'results' / 'runs'
    for loss, tags in VARIANTS.items():
        tag = chosen_tags[loss]
        recs = [json.loads((runs / f'{loss}-{tag}_unet_1xb2-30k_syn-'
                            f'32x32_seed{s}.json').read_text())
                for s in (0, 1)]
        label = f'{TITLES[loss]} ({OPTIONS[tag]})'
        for bound, name in (('mIoU_ci_low', 'mIoU CI low'),
                            ('mIoU_ci_high', 'mIoU CI high')):
            bounds = [r['report']['summary'][bound] for r in recs]
            assert _numbers(column(metrics, name)[label]) == pytest.approx(
                [_mean(bounds), statistics.stdev(bounds)], abs=0.006)
    assert (fresh / 'page_curves_unet.png').is_file()
    # a study continues from the records: nothing runs twice
    shutil.rmtree(folder / 'work')
    plan = run_tool(['tools/grid.py', '--study', spec, '--dry-run']).stdout
    assert 'nothing to run: every selected cell is done' in plan
