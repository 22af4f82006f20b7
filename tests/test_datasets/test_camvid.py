"""CamVidDataset on the real CamVid files (skipped when they are absent)."""
import numpy as np
import pytest
from mmengine.config import Config
from PIL import Image

import mmseg_longtail  # noqa: F401
import mmseg_longtail.datasets.camvid  # noqa: F401  (registers CamVidDataset)
from mmseg.registry import DATASETS
from mmseg_longtail.utils import compute_class_stats

# Pixel counts of label ids 0..10 from ../shared/data/camvid/README.md
# (the 11 Unlabelled pixels are not counted).
README_PIXELS = {
    'train': [10682767, 14750079, 623349, 20076880, 2845085, 6166762,
              743859, 714595, 3719877, 405385, 184967],
    'val': [1601620, 4531180, 98499, 5053176, 1521751, 2851125, 155724,
            537197, 304716, 113531, 387010],
}
SIZES = {'train': 367, 'val': 101}


def build(root, split, pipeline=(), **kwargs):
    return DATASETS.build(
        dict(type='CamVidDataset', data_root=str(root),
             data_prefix=dict(img_path=f'img_dir/{split}',
                              seg_map_path=f'ann_dir/{split}'),
             pipeline=list(pipeline), **kwargs))


@pytest.mark.parametrize('split', ['train', 'val'])
def test_counts_match_readme(camvid_root, split):
    """get_gt_seg_map maps 11 -> 255 and keeps every class pixel."""
    dataset = build(camvid_root, split)
    assert len(dataset) == SIZES[split]
    assert dataset.metainfo['classes'][3] == 'Road'
    stats = compute_class_stats(dataset.get_gt_seg_map, 11, 255,
                                num_labels=len(dataset), progress=False)
    assert stats['pixel_counts'] == README_PIXELS[split]


def test_gt_matches_raw_file(camvid_root):
    dataset = build(camvid_root, 'val')
    for idx in (0, 50, 100):
        raw = np.asarray(
            Image.open(dataset.get_data_info(idx)['seg_map_path']))
        gt = dataset.get_gt_seg_map(idx)
        assert (raw == 11).any()  # the sample really has unlabelled pixels
        np.testing.assert_array_equal(gt, np.where(raw == 11, 255, raw))


def test_base_config_pipeline_on_real_files(camvid_root, repo_root):
    cfg = Config.fromfile(
        str(repo_root / 'configs/_base_/datasets/camvid.py'))
    ds_cfg = cfg.val_dataloader.dataset
    ds_cfg.data_root = str(camvid_root)
    dataset = DATASETS.build(ds_cfg)
    sample = dataset[0]
    assert tuple(sample['inputs'].shape) == (3, 360, 480)
    gt = sample['data_samples'].gt_sem_seg.data.numpy()[0]
    np.testing.assert_array_equal(gt, dataset.get_gt_seg_map(0))
    train_cfg = cfg.train_dataloader.dataset
    train_cfg.data_root = str(camvid_root)
    train = DATASETS.build(train_cfg)
    out = train[3]
    h, w = out['inputs'].shape[1:]
    assert h <= 360 and w <= 480  # crops (smaller when scaled down)
    gt = out['data_samples'].gt_sem_seg.data
    assert tuple(gt.shape[1:]) == (h, w)
    values = set(np.unique(gt).tolist())
    assert values <= set(range(11)) | {255}


def test_class_subset_and_ignore(camvid_root):
    dataset = build(camvid_root, 'val', metainfo=dict(classes=('Road', 'Car')))
    raw = np.asarray(Image.open(dataset.get_data_info(0)['seg_map_path']))
    expected = np.full_like(raw, 255)
    expected[raw == 3] = 0
    expected[raw == 8] = 1
    np.testing.assert_array_equal(dataset.get_gt_seg_map(0), expected)
    assert dataset.metainfo['palette'] == [[128, 64, 128], [64, 0, 128]]


def test_missing_folder_names_the_field(tmp_path):
    with pytest.raises(FileNotFoundError, match='data_prefix.img_path'):
        build(tmp_path, 'train')
    (tmp_path / 'img_dir' / 'train').mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r'no \*\.jpg images'):
        build(tmp_path, 'train')
