"""mmseg_longtail.experiments.collect on hand-made work dirs: a run is found
by its launcher status (never by its folder name), report numbers come from
the report split only, unfinished runs are kept apart, bad inputs are named."""
import json
from pathlib import Path

import pytest

from mmseg_longtail.experiments import Cell, RecordError, gather, load_study
from mmseg_longtail.experiments.collect import (find_run_dirs,
                                                record_from_work_dir)
from tests.conftest import REPO_ROOT, run_tool

CAMVID_CLASSES = ['Sky', 'Building', 'Pole', 'Road', 'Pavement', 'Tree',
                  'SignSymbol', 'Fence', 'Car', 'Pedestrian', 'Bicyclist']
GRID = str(REPO_ROOT / 'configs' / 'grid' / 'paper_grid.py')
STEM = 'unet-s5-d16_fcn-noaux_1xb4-30k_camvid-360x480'


def metric_json(run: Path, stage: str, iou, dice, acc=90.0,
                groups=(50.0, 40.0, 30.0)):
    """A LongTailIoUMetric record of ``stage`` ('val': selection, 'test':
    report) in ``run``."""
    (run / 'longtail_metrics').mkdir(parents=True, exist_ok=True)
    mdice = sum(dice) / len(dice)
    record = dict(
        stage=stage, iter=100 if stage == 'val' else None,
        classes=CAMVID_CLASSES,
        summary=dict(aAcc=acc, mIoU=sum(iou) / len(iou), mAcc=70.0,
                     mDice=mdice, DiceErr=1 - mdice / 100,
                     mIoU_head=groups[0], mIoU_body=groups[1],
                     mIoU_tail=groups[2]),
        per_class=dict(IoU=list(iou), Dice=list(dice)))
    (run / 'longtail_metrics' / f'latest_{stage}.json').write_text(
        json.dumps(record))


def status(run: Path, loss, variant='', model='unet', seed=0, state='done',
           study='paper_grid', **kw):
    run.mkdir(parents=True, exist_ok=True)
    (run / 'grid_status.json').write_text(json.dumps(dict(
        cell=dict(dataset='camvid', model=model, loss=loss, variant=variant,
                  seed=seed), state=state, study=study, **kw)))


@pytest.fixture
def work_root(tmp_path):
    """Grid runs of the paper grid: CE and PAT tau=5 / tau=2 done, a failed
    and an interrupted CE, a plain tools/train.py run and a run of another
    study; returns (root, CE's report IoU)."""
    root = tmp_path / 'grid'
    ce = root / f'ce_{STEM}_seed0'
    status(ce, 'ce', wall_s=3725.0, cfg_options=['a=1'])
    (ce / 'last_checkpoint').write_text(str(ce / 'iter_30000.pth'))
    iou_ce = [float(10 + i) for i in range(11)]
    metric_json(ce, 'val', [99.0] * 11, [99.0] * 11)  # never reported
    metric_json(ce, 'test', iou_ce, [float(20 + i) for i in range(11)])
    (ce / '20240101_000000' / 'vis_data').mkdir(parents=True)
    (ce / '20240101_000000' / 'vis_data' / 'scalars.json').write_text(
        '\n'.join(json.dumps(x) for x in [
            dict(lr=0.01, loss=1.0, step=50, time=0.5),
            dict(lr=0.01, loss=0.9, step=100, time=0.7),
            dict(aAcc=91.0, mIoU=33.0, step=100)]) + '\n{"trunc')
    for tag, sel, rep, acc in (('tau5', 30.0, 25.0, 95.0),
                               ('tau2', 35.0, 20.0, 80.0)):
        run = root / f'pat-{tag}_{STEM}_seed0'
        status(run, 'pat', tag, wall_s=60.0)
        metric_json(run, 'val', [sel] * 11, [40.0] * 11)
        metric_json(run, 'test', [rep] * 11, [40.0] * 11, acc=acc,
                    groups=(60.0, 20.0, 5.0))
    for model, state in (('deeplabv3', 'failed'), ('attunet', 'running')):
        run = root / f'ce_{model}_seed0'
        status(run, 'ce', model=model, state=state)
        metric_json(run, 'val', [80.0] * 11, [80.0] * 11)
    # a plain tools/train.py run named like the CE leaf config: no status,
    # so not a run of the study, whatever its name says
    plain = root / f'ce_{STEM}'
    metric_json(plain, 'val', [70.0] * 11, [70.0] * 11)
    metric_json(plain, 'test', [70.0] * 11, [70.0] * 11)
    status(root / 'other' / f'bms_{STEM}_seed0', 'bms', study='other')
    (root / '_grid' / 'configs').mkdir(parents=True)
    return root, iou_ce


def results(root, tmp_path, records='no_records'):
    study = load_study(GRID, results_dir=str(tmp_path / records))
    return gather(study, [str(root)])


def test_runs_are_found_by_their_status(work_root, tmp_path):
    root, iou_ce = work_root
    found = sorted(Path(p).name for p in find_run_dirs([str(root)]))
    assert found == sorted([f'ce_{STEM}_seed0', f'pat-tau5_{STEM}_seed0',
                            f'pat-tau2_{STEM}_seed0', 'ce_deeplabv3_seed0',
                            'ce_attunet_seed0', f'bms_{STEM}_seed0'])
    res = results(root, tmp_path)
    assert sorted(c.key for c in res.finished) == [
        'camvid/unet/ce/seed0', 'camvid/unet/pat:tau2/seed0',
        'camvid/unet/pat:tau5/seed0']
    assert sorted(r.state for r in res.others) == ['failed', 'running']
    assert len(res.problems) == 1 and "study 'other'" in res.problems[0]
    ce = res.finished[Cell('camvid', 'unet', 'ce', '', 0)]
    assert ce.iters == 30000 and ce.wall_s == 3725.0
    assert ce.cfg_options == ['a=1'] and ce.options == {}
    assert ce.report.summary['mIoU'] == pytest.approx(sum(iou_ce) / 11)
    assert ce.selection.summary['mIoU'] == 99.0
    assert ce.report.per_class_iou == iou_ce
    assert ce.classes == CAMVID_CLASSES
    assert ce.train_s_per_iter == pytest.approx(0.6)
    pat = res.finished[Cell('camvid', 'unet', 'pat', 'tau5', 0)]
    assert pat.options == dict(tau=5.0) or pat.options == dict(tau=5)
    assert pat.report.summary['aAcc'] == 95.0


def test_a_work_dir_without_status_is_no_run(work_root, tmp_path):
    root, _ = work_root
    study = load_study(GRID, results_dir=str(tmp_path / 'none'))
    with pytest.raises(RecordError, match='no grid_status.json'):
        record_from_work_dir(study, str(root / f'ce_{STEM}'))


def test_committed_records_win_over_work_dirs(work_root, tmp_path):
    root, _ = work_root
    res = results(root, tmp_path)
    rec = res.finished[Cell('camvid', 'unet', 'ce', '', 0)]
    rec.report.summary['mIoU'] = 1.5
    rec.save(str(tmp_path / 'records'))
    again = results(root, tmp_path, 'records')
    assert again.finished[Cell('camvid', 'unet', 'ce', '', 0)].report.summary[
        'mIoU'] == 1.5
    assert len(again.finished) == 3


def test_bad_inputs_fail_naming_the_file(work_root, tmp_path):
    root, _ = work_root
    proc = run_tool(['tools/collect_results.py', tmp_path / 'nothing'],
                    check=False)
    assert proc.returncode != 0 and 'does not exist' in proc.stdout
    # a truncated metric record: that work dir is named, the rest is read
    bad = root / f'pat-tau5_{STEM}_seed0'
    (bad / 'longtail_metrics' / 'latest_test.json').write_text('{"summ')
    res = results(root, tmp_path)
    assert any('latest_test.json' in p for p in res.problems)
    assert Cell('camvid', 'unet', 'pat', 'tau5', 0) not in res.finished
    # a corrupt status: named, not guessed from the folder name
    (root / f'ce_{STEM}_seed0' / 'grid_status.json').write_text('{')
    res = results(root, tmp_path)
    assert any('grid_status.json' in p for p in res.problems)
    assert Cell('camvid', 'unet', 'ce', '', 0) not in res.finished
    # a bad committed record stops the collector, naming it
    runs = tmp_path / 'records' / 'runs'
    runs.mkdir(parents=True)
    (runs / 'x.json').write_text('{"kind": "something else"}')
    study = load_study(GRID, results_dir=str(tmp_path / 'records'))
    with pytest.raises(RecordError, match=r'x\.json: not a run record'):
        gather(study, [])
    proc = run_tool(['tools/collect_results.py', '--results-dir',
                     tmp_path / 'records'], check=False)
    assert proc.returncode != 0 and 'x.json' in proc.stdout
