"""An end-to-end sweep on the synthetic data (real Runner, tools/grid.py):
2 losses x 2 variants x 2 seeds. The chosen variant is the one with the
best mean selection metric (computed here from the runs' own metric files),
the reported numbers are those of the report split, and the page
regenerates from the committed records in a fresh folder with no work
dirs."""
import json
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, run_tool

DATA = Path(__file__).parent / 'data' / 'synthetic_sweep.py'
SHORT = ['default_hooks.logger.interval=1', 'train_cfg.max_iters=3',
         'train_cfg.val_interval=1', 'default_hooks.checkpoint.interval=3']
VARIANTS = dict(focal=('gamma0p5', 'gamma3'), pat=('tau1', 'tau5'))


def write_spec(folder: Path) -> Path:
    spec = folder / 'sweep_spec.py'
    spec.write_text(f'''
name = 'sweep_test'
title = 'Sweep test'
datasets = dict(syn=dict(base={str(DATA)!r}, name='syn', title='Synthetic'))
models = dict(unet=dict(base='mmseg_longtail::_base_/models/unet.py', name='unet',
                        title='UNet', size_divisor=16))
losses = dict(
    focal=dict(base='mmseg_longtail::_base_/losses/focal.py', name='focal',
               title='Focal', sweep=dict(gamma=[0.5, 3.0])),
    pat=dict(base='mmseg_longtail::_base_/losses/pat.py', name='pat', title='PAT',
             sweep=dict(tau=[1.0, 5.0])))
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
                   SHORT, timeout=900).stdout
    return folder, spec, out


def _mean(xs):
    return sum(xs) / len(xs)


def test_selection_and_report(sweep):
    folder, spec, out = sweep
    assert '8 cells selected' in out
    work = folder / 'work'
    records = sorted((folder / 'results' / 'runs').glob('*.json'))
    assert len(records) == 8
    # names carry the variant readably
    assert (work / 'focal-gamma0p5_unet_1xb2-30k_syn-32x32_seed1').is_dir()
    chosen = {}
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

    table = run_tool(['tools/collect_results.py', '--study', spec,
                      '--tables', 'table4', 'selection']).stdout
    for loss, (tag, reports) in chosen.items():
        title = dict(focal='Focal', pat='PAT')[loss]
        option = dict(gamma0p5='gamma=0.5', gamma3='gamma=3', tau1='tau=1',
                      tau5='tau=5')[tag]
        row = re.search(rf'^\| {title} \({re.escape(option)}\) \| '
                        r'(\**)([\d.]+)\**\s*\|$', table, re.M)
        assert row, (loss, tag, table)
        assert float(row.group(2)) == pytest.approx(_mean(reports),
                                                    abs=0.006)
        assert re.search(rf'^\| {title} \({re.escape(option)}\) \|.*\| yes '
                         r'\|$', table, re.M)


def test_tail_selection_option(sweep):
    folder, spec, _ = sweep
    work = folder / 'work'
    table = run_tool(['tools/collect_results.py', '--study', spec,
                      '--select-metric', 'mIoU_tail', '--tables',
                      'selection']).stdout
    for loss, tags in VARIANTS.items():
        tails = {t: _mean([_metric(
            work / f'{loss}-{t}_unet_1xb2-30k_syn-32x32_seed{s}',
            'val')['summary']['mIoU_tail'] for s in (0, 1)]) for t in tags}
        best = max(tags, key=lambda t: (tails[t], -tags.index(t)))
        assert re.search(rf'\| {loss} \| {best} \| [\d.]+ \| yes \|', table)


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
    assert '8 of 8 runs finished' in md
    assert '## Selection' in md and '## Training curves' in md
    assert body(page) == body(fresh_page)
    # the intervals over images: each shown setting's interval is the mean
    # of its seeds' bounds (no CE in this study: no marks)
    section = md.split('## Intervals over images')[1].split('\n## ')[0]
    runs = folder / 'results' / 'runs'
    options = dict(gamma0p5='gamma=0.5', gamma3='gamma=3', tau1='tau=1',
                   tau5='tau=5')
    shown = 0
    for loss, tags in VARIANTS.items():
        for tag in tags:
            title = dict(focal='Focal', pat='PAT')[loss]
            row = re.search(rf'^\| {title} \({re.escape(options[tag])}\) '
                            r'\| [^|]+ \| \[([\d.]+), ([\d.]+)\] \| — \|',
                            section, re.M)
            if not row:
                continue
            shown += 1
            recs = [json.loads((runs / f'{loss}-{tag}_unet_1xb2-30k_syn-'
                                f'32x32_seed{s}.json').read_text())
                    for s in (0, 1)]
            for i, bound in enumerate(('mIoU_ci_low', 'mIoU_ci_high')):
                assert float(row.group(i + 1)) == pytest.approx(_mean(
                    [r['report']['summary'][bound] for r in recs]),
                    abs=0.006)
    assert shown == 2, section
    assert (fresh / 'page_curves_unet.png').is_file()
    # a study continues from the records: nothing runs twice
    shutil.rmtree(folder / 'work')
    plan = run_tool(['tools/grid.py', '--study', spec, '--dry-run']).stdout
    assert 'nothing to run: every selected cell is done' in plan
