"""Every dataset base config builds through DATASETS + its pipelines on a
tiny fixture in the data set's real layout."""
import copy

import numpy as np
import pytest
from mmengine.config import Config

import mmseg_longtail  # noqa: F401
from mmseg.registry import DATASETS, METRICS

CONFIGS = {
    'oxford_pet': ('oxford_pet', 3, (256, 256), {
        'train', 'val', 'test'}),
    'nyu_v2_40': ('nyu_v2', 40, (480, 640), {'train', 'test'}),
    'nyu_v2_13': ('nyu_v2', 13, (480, 640), {'train', 'test'}),
    'camvid': ('camvid', 11, (360, 480), {'train', 'val', 'test'}),
    'cityscapes_256x512': ('cityscapes', 19, (256, 512), {'train', 'val'}),
    'cityscapes_512x1024': ('cityscapes', 19, (512, 1024), {'train', 'val'}),
}


def expected_label(kind, name, raw):
    """The label a model must see for a fixture's raw file values."""
    if kind == 'camvid':
        return np.where(raw == 11, 255, raw)
    if name == 'nyu_v2_13':
        return np.where(raw == 255, 255, raw % 13)  # fixture's ann_dir13
    return raw


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_base_config_builds_and_loads(name, tmp_path, repo_root,
                                      dataset_layout):
    kind, num_classes, crop_size, _ = CONFIGS[name]
    cfg = Config.fromfile(
        str(repo_root / 'configs/_base_/datasets' / f'{name}.py'))
    assert cfg.num_classes == num_classes
    assert tuple(cfg.crop_size) == crop_size
    assert cfg.class_stats_file.startswith(f'data/{kind}/')
    for split in ('val_evaluator', 'test_evaluator'):
        assert cfg[split]['type'] == 'LongTailIoUMetric'
        assert cfg[split]['class_stats_file'] == cfg.class_stats_file
        assert METRICS.get(cfg[split]['type']) is not None

    files = dataset_layout(kind, tmp_path)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        ds_cfg = copy.deepcopy(cfg[loader]['dataset'])
        assert ds_cfg['data_root'] == f'data/{kind}'
        ds_cfg['data_root'] = str(tmp_path)
        dataset = DATASETS.build(ds_cfg)
        assert len(dataset.metainfo['classes']) == num_classes
        split = dataset.data_prefix['img_path'].rstrip('/').split('/')[-1]
        assert len(dataset) == 2
        sample = dataset[0]
        img = sample['inputs']
        gt = sample['data_samples'].gt_sem_seg.data.numpy()[0]
        assert img.shape[0] == 3
        values = set(np.unique(gt).tolist())
        assert values <= set(range(num_classes)) | {255}
        if loader == 'train_dataloader':
            assert img.shape[1] <= crop_size[0]
            assert img.shape[2] <= crop_size[1]
            assert gt.shape == tuple(img.shape[1:])
        else:
            # test pipeline: image resized, ground truth at file resolution
            raw = sorted(files[split], key=lambda t: str(t[0]))[0][2]
            np.testing.assert_array_equal(gt, expected_label(kind, name, raw))
            if kind != 'cityscapes':  # mmseg's own class has no reader
                np.testing.assert_array_equal(dataset.get_gt_seg_map(0), gt)
            assert max(img.shape[1:]) > max(raw.shape)


def test_cityscapes_is_mmseg_dataset(repo_root):
    cfg = Config.fromfile(
        str(repo_root / 'configs/_base_/datasets/cityscapes_256x512.py'))
    assert cfg.train_dataloader.dataset.type == 'CityscapesDataset'
    test_resize = [t for t in cfg.test_pipeline if t['type'] == 'Resize'][0]
    assert tuple(test_resize['scale']) == (512, 256)
