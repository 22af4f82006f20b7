"""A short CamVid training run through tools/train.py (real files, tiny
U-Net, quarter resolution) reports head / body / tail mIoU and writes the
per-class JSON into the work dir."""
import json

import pytest

import mmseg_longtail  # noqa: F401
from mmseg.registry import DATASETS
from mmseg_longtail.utils import compute_class_stats, save_class_stats
from tests.conftest import CAMVID_ROOT
from tests.fault_runs import prestart, run_python

CONFIG = 'configs/camvid_smoke/unet_tiny_camvid_smoke.py'

# the fork server of the training run imports while pytest collects the tests
if (CAMVID_ROOT / 'ann_dir' / 'train').is_dir():
    prestart()


def test_camvid_smoke_training(tmp_path, camvid_root, repo_root):
    if not (repo_root / 'tools' / 'train.py').is_file():
        pytest.skip('tools/train.py not present')
    train = DATASETS.build(dict(
        type='CamVidDataset', data_root=str(camvid_root),
        data_prefix=dict(img_path='img_dir/train',
                         seg_map_path='ann_dir/train')))
    stats = compute_class_stats(
        train.get_gt_seg_map, 11, 255,
        class_names=train.metainfo['classes'], num_labels=len(train),
        progress=False)
    stats_file = tmp_path / 'class_stats.json'
    save_class_stats(stats, str(stats_file))

    work_dir = tmp_path / 'work'
    root = str(camvid_root)
    # a process of its own, started by the fork server of tests/fault_runs.py
    run_python(['tools/train.py', CONFIG, '--work-dir', str(work_dir),
                '--cfg-options', f'train_dataloader.dataset.data_root={root}',
                f'val_dataloader.dataset.data_root={root}',
                f'test_dataloader.dataset.data_root={root}',
                f'val_evaluator.class_stats_file={stats_file}'], timeout=300)

    record = json.loads(
        (work_dir / 'longtail_metrics' / 'latest.json').read_text())
    assert record['stage'] == 'val' and record['iter'] == 10
    assert (work_dir / 'longtail_metrics' / 'val_iter10.json').is_file()
    summary = record['summary']
    for key in ('aAcc', 'mIoU', 'mAcc', 'mDice', 'DiceErr', 'mIoU_head',
                'mIoU_body', 'mIoU_tail'):
        assert key in summary
    # terciles of the 11 CamVid classes by training pixels (README counts):
    # round(11/3) = 4 head (Road, Building, Sky, Tree), 3 body (Car,
    # Pavement, SignSymbol), 4 tail (Fence, Pole, Pedestrian, Bicyclist)
    assert record['groups'] == dict(head=[0, 1, 3, 5], body=[4, 6, 8],
                                    tail=[2, 7, 9, 10])
    assert record['train_counts'] == stats['pixel_counts']
    assert 0 < summary['aAcc'] <= 100
    assert summary['DiceErr'] == pytest.approx(1 - summary['mDice'] / 100)
    log = next(work_dir.glob('*/*.log')).read_text()
    assert 'mIoU_tail' in log and 'per class results' in log
