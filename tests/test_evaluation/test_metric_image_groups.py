"""LongTailIoUMetric's head / body / tail groups by image frequency next to
pixel frequency (``group_by``) and the class-level per-image mIoU^C
(``per_image_class``), on a hand-built case computed by hand below."""
import json
import re

import numpy as np
import pytest
import torch

import mmseg_longtail  # noqa: F401  (registers the metric)
from mmseg.registry import METRICS
from mmseg_longtail.evaluation.statistics import per_class_image_iou

IGNORE = 255
K = 4
# pixel order 0 > 1 > 2 > 3, image order 3 > 2 > 1 > 0; terciles of 4
# classes: round(4/3) = 1 head class, round(8/3) = 3 end the body
STATS = dict(classes=[f'c{i}' for i in range(K)], ignore_index=IGNORE,
             num_images=20, pixel_counts=[1000, 100, 10, 1],
             image_counts=[1, 5, 10, 20])
PIXEL_GROUPS = dict(head=[0], body=[1, 2], tail=[3])
IMAGE_GROUPS = dict(head=[3], body=[1, 2], tail=[0])


def sample(pred, label):
    return dict(pred_sem_seg=dict(data=torch.as_tensor(pred)[None]),
                gt_sem_seg=dict(data=torch.as_tensor(label)[None]))


def three_images():
    """Per image and class (I, U), ignored pixels left out:

    A: label 0 0 1 1, pred 0 0 1 0  -> c0 (2, 3), c1 (1, 2)
    B: label 2 2 3 -, pred 2 3 3 1  -> c2 (1, 2), c3 (1, 2); the 1 is
       predicted on the ignored pixel and counts nowhere
    C: label 0 0 2 2, pred 0 1 2 2  -> c0 (1, 2), c2 (2, 2), c1 (0, 1):
       class 1 only predicted (a false-positive class)
    """
    return [sample([[0, 0, 1, 0]], [[0, 0, 1, 1]]),
            sample([[2, 3, 3, 1]], [[2, 2, 3, IGNORE]]),
            sample([[0, 1, 2, 2]], [[0, 0, 2, 2]])]


# dataset-level IoU: c0 I=3 U=5, c1 I=1 U=3, c2 I=3 U=4, c3 I=1 U=2
IOU = np.array([3 / 5, 1 / 3, 3 / 4, 1 / 2])
# mIoU^C: per class, the mean IoU over the images whose label has it:
# c0 (A 2/3, C 1/2), c1 (A 1/2; not C, only predicted there), c2 (B 1/2,
# C 1), c3 (B 1/2)
IOU_C = np.array([(2 / 3 + 1 / 2) / 2, 1 / 2, (1 / 2 + 1) / 2, 1 / 2])
IMAGES_C = [2, 1, 2, 1]
# per-image mIoU over the classes with union > 0: A 7/12, B 1/2, C 1/2
MIOU_IMG = (7 / 12 + 1 / 2 + 1 / 2) / 3


@pytest.fixture
def stats_file(tmp_path):
    path = tmp_path / 'stats.json'
    path.write_text(json.dumps(STATS))
    return str(path)


def evaluate(cfg, samples=None):
    metric = METRICS.build(dict(dict(type='LongTailIoUMetric',
                                     save_json=False), **cfg))
    metric.dataset_meta = dict(classes=tuple(STATS['classes']))
    samples = three_images() if samples is None else samples
    for i in range(0, len(samples), 2):
        metric.process({}, samples[i:i + 2])
    return metric, metric.evaluate(len(samples))


def r2(fraction):
    return round(100 * fraction, 2)


def test_pixel_and_image_groups_both_reported(stats_file, tmp_path):
    metric, out = evaluate(dict(class_stats_file=stats_file,
                                group_by=('pixel', 'image'),
                                save_json=True, json_dir=str(tmp_path)))
    assert metric.groups == PIXEL_GROUPS
    assert metric.groups_by == dict(pixel=PIXEL_GROUPS, image=IMAGE_GROUPS)
    assert out['mIoU'] == r2(IOU.mean())
    assert out['mIoU_head'] == r2(3 / 5) == 60.0
    assert out['mIoU_body'] == r2((1 / 3 + 3 / 4) / 2)
    assert out['mIoU_tail'] == r2(1 / 2) == 50.0
    assert out['mIoU_head_imgfreq'] == 50.0
    assert out['mIoU_body_imgfreq'] == out['mIoU_body']
    assert out['mIoU_tail_imgfreq'] == 60.0
    record = json.loads((tmp_path / 'latest.json').read_text())
    assert record['group_by'] == ['pixel', 'image']
    assert record['groups'] == PIXEL_GROUPS  # unchanged field
    assert record['groups_by'] == dict(pixel=PIXEL_GROUPS,
                                       image=IMAGE_GROUPS)
    assert record['train_counts_by'] == dict(
        pixel=STATS['pixel_counts'], image=STATS['image_counts'])
    assert record['summary']['mIoU_tail_imgfreq'] == pytest.approx(60.0)


def test_default_and_single_kind_keys(stats_file):
    _, pixel = evaluate(dict(class_stats_file=stats_file))
    assert pixel['mIoU_head'] == 60.0
    assert not any(k.endswith('freq') for k in pixel)
    # one kind: the plain keys, as count_type='image' gives them
    for cfg in (dict(group_by='image'), dict(count_type='image'),
                dict(group_by=['image'], count_type='image')):
        metric, out = evaluate(dict(class_stats_file=stats_file, **cfg))
        assert metric.groups == IMAGE_GROUPS and metric.count_type == 'image'
        assert (out['mIoU_head'], out['mIoU_tail']) == (50.0, 60.0)
        assert not any(k.endswith('freq') for k in out)
    # image first: the pixel groups take the suffix
    _, out = evaluate(dict(class_stats_file=stats_file,
                           group_by=('image', 'pixel')))
    assert (out['mIoU_head'], out['mIoU_head_pixfreq']) == (50.0, 60.0)
    # given groups stay the first kind; the image groups come from the file
    metric, out = evaluate(dict(class_stats_file=stats_file,
                                group_by=('pixel', 'image'),
                                frequency_groups=dict(head=[2], tail=[1])))
    assert out['mIoU_head'] == 75.0 and out['mIoU_tail'] == r2(1 / 3)
    assert out['mIoU_head_imgfreq'] == 50.0


def test_image_groups_from_class_counts_path(stats_file):
    _, out = evaluate(dict(class_counts=stats_file,
                           group_by=('pixel', 'image')))
    assert out['mIoU_tail_imgfreq'] == 60.0


def test_image_groups_need_image_counts(tmp_path):
    old = tmp_path / 'old.json'
    old.write_text(json.dumps(dict(pixel_counts=STATS['pixel_counts'])))
    for cfg in (dict(group_by=('pixel', 'image')), dict(group_by='image')):
        with pytest.raises(KeyError) as info:
            METRICS.build(dict(type='LongTailIoUMetric',
                               class_stats_file=str(old), **cfg))
        message = str(info.value.args[0])
        for word in (str(old), 'image_counts', 'class_stats.py'):
            assert word in message, message
    with pytest.raises(ValueError, match='statistics file'):
        METRICS.build(dict(type='LongTailIoUMetric', class_counts=[1, 2, 3],
                           group_by=('pixel', 'image')))


@pytest.mark.parametrize('cfg,match', [
    (dict(group_by='voxel'), 'group_by must name'),
    (dict(group_by=('pixel', 'pixel')), 'group_by must name'),
    (dict(group_by=()), 'group_by must name'),
    (dict(count_type='image', group_by=('pixel', 'image')), 'disagree'),
    (dict(count_type='voxel'), 'count_type must be one of'),
    (dict(per_image_class=1), 'per_image_class must be True or False'),
])
def test_bad_options_fail_at_build(stats_file, cfg, match):
    with pytest.raises(ValueError, match=match):
        METRICS.build(dict(type='LongTailIoUMetric',
                           class_stats_file=stats_file, **cfg))


def test_image_counts_of_wrong_length(tmp_path):
    path = tmp_path / 's.json'
    path.write_text(json.dumps(dict(STATS, image_counts=[1, 2, 3])))
    metric = METRICS.build(dict(type='LongTailIoUMetric',
                                class_stats_file=str(path),
                                group_by=('pixel', 'image')))
    with pytest.raises(ValueError, match=re.escape('image_counts')):
        metric.dataset_meta = dict(classes=tuple(STATS['classes']))


# ------------------------------------------------------------- mIoU^C
def test_miou_c_by_hand(tmp_path):
    _, out = evaluate(dict(per_image=True, per_image_class=True,
                           save_json=True, json_dir=str(tmp_path)))
    assert out['mIoU_img_cls'] == r2(IOU_C.mean()) == r2(7 / 12)
    assert out['mIoU_img'] == r2(MIOU_IMG)
    record = json.loads((tmp_path / 'latest.json').read_text())
    np.testing.assert_allclose(record['per_image_class']['IoU'],
                               100 * IOU_C, rtol=1e-12)
    assert record['per_image_class']['images'] == IMAGES_C
    # off by default; on alone it needs no per_image
    _, out = evaluate({})
    assert 'mIoU_img_cls' not in out
    _, out = evaluate(dict(per_image_class=True))
    assert out['mIoU_img_cls'] == r2(7 / 12) and 'mIoU_img' not in out


def test_miou_c_class_in_no_label_and_empty_image():
    """A class only ever predicted, and an image with every pixel
    ignored, enter no term."""
    images = three_images() + [sample([[3, 3]], [[IGNORE, IGNORE]])]
    _, out = evaluate(dict(per_image_class=True), images)
    assert out['mIoU_img_cls'] == r2(7 / 12)
    only_predicted = [sample([[0, 1]], [[0, 0]])]  # c1 never labelled
    _, out = evaluate(dict(per_image_class=True), only_predicted)
    assert out['mIoU_img_cls'] == 50.0  # c0 alone: I=1, U=2


def test_per_class_image_iou_against_loops():
    rng = np.random.default_rng(0)
    label = rng.integers(0, 3, (30, 5)) * (rng.random((30, 5)) < 0.5)
    inter = np.minimum(label, rng.integers(0, 3, (30, 5)))
    union = label + rng.integers(0, 3, (30, 5))
    iou, images = per_class_image_iou(inter, union, label)
    for c in range(5):
        rows = [inter[i, c] / union[i, c] for i in range(30)
                if label[i, c] > 0]
        assert images[c] == len(rows)
        assert iou[c] == pytest.approx(np.mean(rows), rel=1e-12)
