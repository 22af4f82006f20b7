"""The collector's runs table and the study page show LongTailIoUMetric's
optional numbers where run records have them, and nothing new where they
do not (records written before them)."""
from pathlib import Path

from mmseg_longtail.experiments import (Cell, RunRecord, SplitMetrics,
                                        gather, load_study, run_name)
from mmseg_longtail.experiments.page import StudyPage
from mmseg_longtail.experiments.tables import PaperTables

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / 'tests' / 'test_configs' / 'data' / 'synthetic_tiny.py'
LOSSES = dict(ce='CE', jaccard='Jaccard', dice='Dice')
BASE = dict(mIoU=40.0, aAcc=80.0, mAcc=50.0, mDice=50.0, DiceErr=0.5,
            mIoU_head=60.0, mIoU_body=40.0, mIoU_tail=20.0)
NEW = dict(mPrecision=55.0, mRecall=50.0, mIoU_img=38.0,
           mIoU_img_worst=12.0, ECE=3.5, SCE=0.75, mIoU_ci_low=37.0,
           mIoU_ci_high=43.0)


def write_spec(folder: Path) -> str:
    """A study of three losses without sweeps on the tiny synthetic data."""
    losses = ', '.join(
        f"{k}=dict(base='mmseg_longtail::_base_/losses/{k}.py', name={k!r}, "
        f'title={t!r})' for k, t in LOSSES.items())
    spec = folder / 'spec.py'
    spec.write_text(f'''
name = 'metric_columns'
title = 'Metric columns'
datasets = dict(syn=dict(base={str(DATA)!r}, name='syn', title='Synthetic'))
models = dict(unet=dict(base='mmseg_longtail::_base_/models/unet.py',
                        name='unet', title='UNet', size_divisor=16))
losses = dict({losses})
schedule = dict(base='mmseg_longtail::_base_/schedules/schedule_30k.py')
seeds = [0]
work_root = {str(folder / 'work')!r}
results_dir = {str(folder / 'results')!r}
page = {str(folder / 'page.md')!r}
''')
    return str(spec)


def _save(results, st, loss, summary):
    cell = Cell('syn', 'unet', loss, '', 0)
    RunRecord(study=st.name, name=run_name(st, cell), cell=cell.to_dict(),
              options={}, iters=10,
              selection=SplitMetrics('selection', dict(summary)),
              report=SplitMetrics('report', dict(summary))).save(
                  str(results))


def _tables(tmp_path, summaries):
    """The study's results with one record per summary (CE, Jaccard,
    Dice in that order)."""
    st = load_study(write_spec(tmp_path))
    for loss, summary in zip(LOSSES, summaries):
        _save(tmp_path / 'results', st, loss, summary)
    return gather(st)


def test_old_records_show_no_new_columns(tmp_path):
    res = _tables(tmp_path, [BASE, dict(BASE, mIoU=45.0)])
    runs = PaperTables(res).runs()
    assert not any('ECE' in h or 'CI' in h for h in runs.header())
    md = StudyPage(res, str(tmp_path / 'page.md')).results_section('syn')
    assert '| ECE |' not in '\n'.join(md)


def test_new_columns_where_records_have_them(tmp_path):
    res = _tables(tmp_path, [
        dict(BASE, **NEW),
        dict(BASE, mIoU=45.0, **dict(NEW, ECE=2.25, mIoU_img=30.0)),
        BASE])
    runs = PaperTables(res).runs()
    header = runs.header()
    assert 'report ECE' in header and 'report mIoU CI low' in header
    assert 'report tail CI low' not in header  # no record has it
    text = runs.to_markdown()
    assert '3.5000' in text and '0.7500' in text
    md = '\n'.join(StudyPage(res, str(tmp_path / 'page.md')).results_section(
        'syn'))
    table = md[md.index('| Loss | mIoU | aAcc'):]
    header = table.splitlines()[0]
    for label in ('ECE', 'SCE', 'image mIoU', 'mIoU CI low'):
        assert f'| {label} |' in header, label
    rows = {r.split('|')[1].strip(): [c.strip() for c in r.split('|')[2:-1]]
            for r in table.splitlines()[2:] if r.startswith('| ')}
    cols = [c.strip() for c in header.split('|')[2:-1]]
    ece, img = cols.index('ECE'), cols.index('image mIoU')
    first, second, old = (rows[t] for t in LOSSES.values())
    # lower ECE is better, higher image mIoU is better: bold accordingly
    assert second[ece] == '**2.2500**' and first[ece] == '3.5000'
    assert first[img] == '**38.00**' and second[img] == '30.00'
    assert old[ece] == ''  # its record predates the metric options
    # CI bounds: no better direction, never bold
    ci = cols.index('mIoU CI low')
    assert first[ci] == second[ci] == '37.00'
