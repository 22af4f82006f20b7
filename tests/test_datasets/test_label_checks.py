"""Bad labels and corrupt files fail naming the file: the pipeline's
``CheckLabelRange`` (on in every data set base), the plugin's loaders
(``LoadImageNamingFile``, ``LoadAnnotationsNamingFile``, used by every data
set base), the class-statistics tool and the metric.
"""
import copy
import re

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

import mmseg_longtail  # noqa: F401
from mmseg.registry import DATASETS, METRICS, TRANSFORMS
from mmseg_longtail.datasets.transforms import label_range_error
from tests.conftest import REPO_ROOT, run_tool

BASES = REPO_ROOT / 'configs' / '_base_' / 'datasets'
# every data set base whose pipelines load label files
LABEL_BASES = ['camvid', 'cityscapes_256x512', 'cityscapes_512x1024',
               'nyu_v2_13', 'nyu_v2_40', 'oxford_pet']
KIND = dict(camvid='camvid', oxford_pet='oxford_pet', nyu_v2_13='nyu_v2',
            nyu_v2_40='nyu_v2')


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


# ---------------------------------------------------------- the transform
@pytest.mark.parametrize(
    'values, dtype, num_classes, ignore, bad',
    [
        ([0, 1, 2, 255], np.uint8, 3, 255, None),
        ([0, 2, 3, 255], np.uint8, 3, 255, [3]),
        ([0, 12, 200, 255], np.uint8, 11, 255, [12, 200]),
        ([0, 1, 11], np.uint8, 11, 11, None),  # CamVid's raw ignore id
        ([0, 1, 255], np.uint8, 11, 11, [255]),  # 255 not ignored here
        ([-1, 0, 1], np.int64, 3, 255, [-1]),
        ([-1, 0, 1], np.int64, 3, -1, None),
        ([0, 1, 2], np.uint8, 2, 2, None),  # ignore_index inside 0..C-1
        (list(range(20)), np.uint8, 3, 255, list(range(3, 13))),
    ],
    ids=['valid', 'one-over', 'cityscapes-ids', 'camvid-raw-ignore',
         'other-ignore', 'negative', 'negative-ignore', 'ignore-in-range',
         'many'])
def test_check_label_range(values, dtype, num_classes, ignore, bad):
    label = np.array(values, dtype=dtype).reshape(1, -1).repeat(3, 0)
    check = TRANSFORMS.build(
        dict(type='CheckLabelRange', num_classes=num_classes,
             ignore_index=ignore))
    results = dict(gt_seg_map=label, seg_map_path='ann/x_01.png')
    if bad is None:
        assert check(results) is results
        return
    with pytest.raises(ValueError) as info:
        check(results)
    message = str(info.value)
    assert message.startswith('ann/x_01.png: label values '
                              + ', '.join(map(str, bad)))
    assert f'0..{num_classes - 1}' in message
    assert f'ignore_index={ignore}' in message
    if len(values) - num_classes > 10:
        assert 'and 7 more' in message


@pytest.mark.parametrize('cfg, match', [
    (dict(num_classes=0), 'num_classes must be an int >= 1'),
    (dict(num_classes='11'), 'num_classes must be an int >= 1'),
    (dict(num_classes=11, ignore_index=None), 'ignore_index must be an int'),
])
def test_check_label_range_arguments(cfg, match):
    with pytest.raises(ValueError, match=match):
        TRANSFORMS.build(dict(type='CheckLabelRange', **cfg))


def test_check_label_range_needs_labels():
    check = TRANSFORMS.build(dict(type='CheckLabelRange', num_classes=3))
    with pytest.raises(KeyError, match='after LoadAnnotations'):
        check(dict(img_path='x.jpg'))


@pytest.mark.parametrize('name', LABEL_BASES)
def test_every_base_checks_labels_after_loading(name):
    """Each pipeline that loads labels checks them right after, against the
    base's own num_classes (nyu_v2_13 inherits nyu_v2_40's pipelines, which
    were built with 40)."""
    cfg = Config.fromfile(str(BASES / f'{name}.py'))
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        pipeline = cfg[loader].dataset.pipeline
        types = [t.type for t in pipeline]
        assert types[0] == 'LoadImageNamingFile', (loader, types)
        i = types.index('LoadAnnotationsNamingFile')
        check = pipeline[i + 1]
        assert check.type == 'CheckLabelRange', (loader, types)
        assert check.num_classes == cfg.num_classes
        assert check.get('ignore_index', 255) == 255


# ------------------------------------------------- data sets (training)
@pytest.mark.parametrize('name, value', [
    ('camvid', 12),  # 11 is CamVid's unlabelled id (-> 255), 12 is not
    ('oxford_pet', 3),
    ('nyu_v2_13', 20),  # a valid NYUv2-40 id, out of range for 13 classes
])
def test_dataset_refuses_out_of_range_label(name, value, tmp_path,
                                            dataset_layout):
    cfg = Config.fromfile(str(BASES / f'{name}.py'))
    dataset_layout(KIND[name], tmp_path)
    for loader in ('train_dataloader', 'val_dataloader'):
        ds_cfg = copy.deepcopy(cfg[loader].dataset)
        ds_cfg['data_root'] = str(tmp_path)
        dataset = DATASETS.build(ds_cfg)
        ann = dataset.get_data_info(0)['seg_map_path']
        label = np.array(Image.open(ann))
        label[0, :3] = value
        Image.fromarray(label).save(ann)
        with pytest.raises(ValueError) as info:
            dataset[0]
        assert str(info.value).startswith(f'{ann}: label values {value} ')


def test_pipeline_without_the_check_still_checks(tmp_path, dataset_layout):
    """The camvid_smoke config's pipelines drop CheckLabelRange (so does
    many a user pipeline): the data set puts it back after the label
    loader, and a label value 200 fails naming the file."""
    cfg = Config.fromfile(
        str(REPO_ROOT / 'configs/camvid_smoke/unet_tiny_camvid_smoke.py'))
    assert 'CheckLabelRange' not in [t['type'] for t in
                                     cfg.train_dataloader.dataset.pipeline]
    dataset_layout('camvid', tmp_path)
    ds_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    ds_cfg['data_root'] = str(tmp_path)
    dataset = DATASETS.build(ds_cfg)
    types = [type(t).__name__ for t in dataset.pipeline.transforms]
    i = types.index('LoadAnnotationsNamingFile')
    assert types[i + 1] == 'CheckLabelRange'
    assert types.count('CheckLabelRange') == 1
    ann = dataset.get_data_info(0)['seg_map_path']
    label = np.array(Image.open(ann))
    label[0, :3] = 200
    Image.fromarray(label).save(ann)
    with pytest.raises(ValueError, match=f'^{re.escape(ann)}: label values '
                       '200 '):
        dataset[0]


def test_dataset_names_corrupt_label_file(tmp_path, dataset_layout):
    """A truncated label PNG: PIL's 'image file is truncated' gains the
    file's path (it had none), in the training pipeline."""
    cfg = Config.fromfile(str(BASES / 'camvid.py'))
    dataset_layout('camvid', tmp_path)
    ds_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    ds_cfg['data_root'] = str(tmp_path)
    dataset = DATASETS.build(ds_cfg)
    ann = dataset.get_data_info(0)['seg_map_path']
    truncate(type(tmp_path)(ann))
    with pytest.raises(OSError) as info:
        dataset[0]
    assert str(info.value).startswith(f'{ann}: OSError: ')
    assert 'truncated' in str(info.value)


@pytest.mark.parametrize('transform, key', [
    (dict(type='LoadImageNamingFile', imdecode_backend='pillow'), 'img_path'),
    (dict(type='LoadAnnotationsNamingFile'), 'seg_map_path'),
])
def test_loaders_name_corrupt_files(transform, key, tmp_path):
    path = tmp_path / 'x.png'
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3))
    Image.fromarray(noise.astype(np.uint8)).save(path)
    truncate(path)  # the header survives: the decoder fails mid-image
    results = {key: str(path), 'seg_fields': [], 'reduce_zero_label': False}
    with pytest.raises(OSError,
                       match=f'^{re.escape(str(path))}: OSError: .*truncated'):
        TRANSFORMS.build(transform)(dict(results))
    # the stock transform it derives from is mmseg's / mmcv's, untouched
    stock = dict(transform, type=transform['type'].replace('NamingFile', '')
                 .replace('LoadImage', 'LoadImageFromFile'))
    with pytest.raises(OSError) as info:
        TRANSFORMS.build(stock)(dict(results))
    assert str(path) not in str(info.value)
    garbage = tmp_path / 'y.png'
    garbage.write_bytes(b'not an image')
    results[key] = str(garbage)
    with pytest.raises(Exception) as info:
        TRANSFORMS.build(transform)(results)
    assert str(garbage) in str(info.value)


# ------------------------------------------------------ statistics tool
def test_stats_from_config_names_label_file(tmp_path, dataset_layout):
    """The config form counts through the data set's loader: its errors
    (bad values, corrupt files) name the label file, not 'label 0'."""
    from mmseg_longtail.analysis.class_stats import stats_from_config
    dataset_layout('oxford_pet', tmp_path)
    options = {'train_dataloader.dataset.data_root': str(tmp_path)}
    config = str(BASES / 'oxford_pet.py')
    stats = stats_from_config(config, cfg_options=options)
    assert stats['num_images'] == 2
    ann = sorted((tmp_path / 'ann_dir' / 'train').glob('*.png'))[0]
    label = np.array(Image.open(ann))
    label[0, 0] = 7
    Image.fromarray(label).save(ann)
    name = re.escape(str(ann))
    with pytest.raises(ValueError, match=f'^{name}: label values .*7'):
        stats_from_config(config, cfg_options=options)
    truncate(ann)
    with pytest.raises(OSError, match=f'^{name}: OSError: .*truncated'):
        stats_from_config(config, cfg_options=options)


def test_stats_tool_names_corrupt_png(tmp_path):
    """The --ann-dir form reads PNGs itself: a truncated one is named."""
    (tmp_path / 'ann').mkdir()
    rng = np.random.default_rng(0)
    for name in ('a', 'b'):
        Image.fromarray(rng.integers(0, 3, (64, 64)).astype(np.uint8)).save(
            tmp_path / 'ann' / f'{name}.png')
    truncate(tmp_path / 'ann' / 'b.png')  # fails mid-image, not at open
    proc = run_tool([
        'tools/analysis_tools/class_stats.py', '--ann-dir', tmp_path / 'ann',
        '--num-classes', '3', '--out', tmp_path / 'o.json'
    ], check=False)
    assert proc.returncode != 0
    assert f"{tmp_path / 'ann' / 'b.png'}: OSError: " in proc.stdout
    assert not (tmp_path / 'o.json').exists()


# ----------------------------------------------------------- the metric
@pytest.mark.parametrize('value, ignore', [(12, 255), (200, 255), (255, 0)])
def test_metric_refuses_out_of_range_labels(value, ignore, tmp_path):
    """mmseg's areas histogram only 0..C-1: without the check these pixels
    vanish from the metric silently."""
    metric = METRICS.build(
        dict(type='LongTailIoUMetric', json_dir=str(tmp_path),
             ignore_index=ignore))
    metric.dataset_meta = dict(classes=tuple(f'c{i}' for i in range(11)))
    label = torch.randint(0, 11, (1, 6, 6))
    pred = torch.randint(0, 11, (1, 6, 6))
    good = dict(pred_sem_seg=dict(data=pred), gt_sem_seg=dict(data=label),
                seg_map_path='ann/ok.png')
    metric.process({}, [good])
    bad_label = label.clone()
    bad_label[0, :3] = value
    bad = dict(pred_sem_seg=dict(data=pred), gt_sem_seg=dict(data=bad_label),
               seg_map_path='ann/bad.png')
    with pytest.raises(ValueError) as info:
        metric.process({}, [bad])
    message = str(info.value)
    assert f'ann/bad.png: label values {value} (' in message
    assert f'ignore_index={ignore}' in message
    assert len(metric.results) == 1  # nothing of the bad image was kept


def test_label_range_error_is_cheap():
    """One comparison pass: a 2-megapixel label in a few ms (generous bound
    for a shared CPU; measured about 1 ms)."""
    import time
    label = np.random.default_rng(0).integers(
        0, 19, (1024, 2048)).astype(np.uint8)
    label[:64] = 255
    start = time.perf_counter()
    for _ in range(5):
        assert label_range_error(label, 19, 255, 'x') is None
    assert (time.perf_counter() - start) / 5 < 0.05
