"""LongTailIoUMetric against a direct numpy computation."""
import json

import numpy as np
import pytest
import torch

import mmseg_longtail  # noqa: F401  (registers the metric)
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS

K = 6
CLASSES = tuple(f'c{i}' for i in range(K))
IGNORE = 255


def make_batches(seed=0, n=4, h=9, w=11):
    """Random predictions / labels where class 5 is absent from both,
    class 4 only predicted and class 3 only labelled; ~10% ignored."""
    rng = np.random.default_rng(seed)
    preds, labels = [], []
    for _ in range(n):
        label = rng.choice([0, 1, 2, 3], size=(h, w), p=[.5, .3, .15, .05])
        label[rng.random((h, w)) < 0.1] = IGNORE
        pred = rng.choice([0, 1, 2, 4], size=(h, w), p=[.4, .3, .2, .1])
        preds.append(pred)
        labels.append(label)
    return preds, labels


def numpy_reference(preds, labels, k=K):
    inter = np.zeros(k)
    pred_area = np.zeros(k)
    label_area = np.zeros(k)
    for pred, label in zip(preds, labels):
        valid = label != IGNORE
        p, t = pred[valid], label[valid]
        inter += np.bincount(t[p == t], minlength=k)
        pred_area += np.bincount(p, minlength=k)
        label_area += np.bincount(t, minlength=k)
    with np.errstate(invalid='ignore', divide='ignore'):
        iou = inter / (pred_area + label_area - inter)
        acc = inter / label_area
        dice = 2 * inter / (pred_area + label_area)
    return dict(
        aAcc=inter.sum() / label_area.sum() * 100,
        IoU=iou * 100, Acc=acc * 100, Dice=dice * 100,
        mIoU=np.nanmean(iou) * 100, mAcc=np.nanmean(acc) * 100,
        mDice=np.nanmean(dice) * 100, DiceErr=1 - np.nanmean(dice))


def samples(preds, labels):
    return [
        dict(pred_sem_seg=dict(data=torch.from_numpy(p)[None]),
             gt_sem_seg=dict(data=torch.from_numpy(t)[None]))
        for p, t in zip(preds, labels)
    ]


def run_metric(metric, preds, labels, batch=2):
    metric.dataset_meta = dict(classes=CLASSES)
    data = samples(preds, labels)
    for i in range(0, len(data), batch):
        metric.process({}, data[i:i + batch])
    return metric.evaluate(len(data))


def test_matches_numpy_including_absent_classes(tmp_path):
    preds, labels = make_batches()
    ref = numpy_reference(preds, labels)
    assert np.isnan(ref['IoU'][5]) and ref['IoU'][4] == 0  # fixture sanity
    metric = METRICS.build(
        dict(type='LongTailIoUMetric', json_dir=str(tmp_path)))
    out = run_metric(metric, preds, labels)
    for key in ('aAcc', 'mIoU', 'mAcc', 'mDice'):
        assert out[key] == pytest.approx(ref[key], abs=0.006), key
    assert out['DiceErr'] == pytest.approx(ref['DiceErr'], abs=6e-5)
    assert not any(k.startswith('mIoU_') for k in out)

    record = json.loads((tmp_path / 'latest.json').read_text())
    for key in ('IoU', 'Acc', 'Dice'):
        got = np.array([np.nan if v is None else v
                        for v in record['per_class'][key]])
        np.testing.assert_allclose(got, ref[key], rtol=1e-9, equal_nan=True)
    assert record['per_class']['IoU'][5] is None  # NaN -> null, not NaN
    assert record['summary']['mIoU'] == pytest.approx(ref['mIoU'], rel=1e-9)
    assert record['classes'] == list(CLASSES)
    assert record['groups'] is None


def test_same_numbers_as_mmseg_iou_metric(tmp_path):
    preds, labels = make_batches(seed=3)
    ours = run_metric(
        METRICS.build(dict(type='LongTailIoUMetric', save_json=False)),
        preds, labels)
    theirs = run_metric(IoUMetric(iou_metrics=['mIoU', 'mDice']), preds,
                        labels)
    for key in ('aAcc', 'mIoU', 'mAcc', 'mDice'):
        assert ours[key] == theirs[key]


def test_frequency_groups_from_counts(tmp_path):
    preds, labels = make_batches(seed=1)
    ref = numpy_reference(preds, labels)
    counts = [100, 50, 10, 5, 1, 1000]
    # sorted by count: 5, 0 | 1, 2 | 3, 4  (terciles of 6 classes)
    expected = dict(head=[0, 5], body=[1, 2], tail=[3, 4])
    metric = METRICS.build(
        dict(type='LongTailIoUMetric', class_counts=counts,
             json_dir=str(tmp_path)))
    out = run_metric(metric, preds, labels)
    assert metric.groups == expected
    for name, ids in expected.items():
        assert out[f'mIoU_{name}'] == pytest.approx(
            np.nanmean(ref['IoU'][ids]), abs=0.006), name
    record = json.loads((tmp_path / 'latest.json').read_text())
    assert record['groups'] == expected
    assert record['train_counts'] == counts


def test_stats_file_thresholds_and_explicit_groups(tmp_path):
    preds, labels = make_batches(seed=2)
    ref = numpy_reference(preds, labels)
    stats = tmp_path / 'stats.json'
    stats.write_text(json.dumps(dict(
        classes=list(CLASSES), ignore_index=255, num_images=4,
        pixel_counts=[60, 50, 40, 30, 20, 10],
        image_counts=[1, 1, 1, 4, 4, 4])))
    metric = METRICS.build(
        dict(type='LongTailIoUMetric', class_stats_file=str(stats),
             group_thresholds=(0.5, 0.5), save_json=False))
    out = run_metric(metric, preds, labels)
    assert metric.groups == dict(head=[0, 1, 2], body=[], tail=[3, 4, 5])
    assert np.isnan(out['mIoU_body'])
    assert out['mIoU_head'] == pytest.approx(
        np.nanmean(ref['IoU'][[0, 1, 2]]), abs=0.006)
    # image counts reverse the order
    metric = METRICS.build(
        dict(type='LongTailIoUMetric', class_stats_file=str(stats),
             count_type='image', save_json=False))
    metric.dataset_meta = dict(classes=CLASSES)
    assert metric.groups['tail'] == [1, 2]  # ties keep class-id order
    metric = METRICS.build(
        dict(type='LongTailIoUMetric', save_json=False,
             frequency_groups=dict(head=[1], tail=[0, 3])))
    out = run_metric(metric, preds, labels)
    assert out['mIoU_tail'] == pytest.approx(
        np.nanmean(ref['IoU'][[0, 3]]), abs=0.006)
    assert np.isnan(out['mIoU_body'])


def test_bad_inputs_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match='class_stats_file'):
        METRICS.build(dict(type='LongTailIoUMetric',
                           class_stats_file=str(tmp_path / 'none.json')))
    with pytest.raises(ValueError, match='class_counts.*negative'):
        METRICS.build(dict(type='LongTailIoUMetric', class_counts=[1, -1]))
    with pytest.raises(ValueError, match='not both'):
        METRICS.build(dict(type='LongTailIoUMetric', class_counts=[1, 2],
                           class_stats_file='x.json'))
    with pytest.raises(ValueError, match='iou_metrics'):
        METRICS.build(dict(type='LongTailIoUMetric', iou_metrics=['mAP']))
    with pytest.raises(ValueError, match='two groups'):
        METRICS.build(dict(type='LongTailIoUMetric',
                           frequency_groups=dict(head=[0], tail=[0])))
    with pytest.raises(ValueError, match='group_thresholds'):
        METRICS.build(dict(type='LongTailIoUMetric',
                           group_thresholds=(0.8, 0.2)))
    metric = METRICS.build(dict(type='LongTailIoUMetric',
                                class_counts=[1, 2, 3]))
    with pytest.raises(ValueError, match='class_counts has 3 counts.*6'):
        metric.dataset_meta = dict(classes=CLASSES)
    metric = METRICS.build(dict(type='LongTailIoUMetric',
                                frequency_groups=dict(head=[7])))
    with pytest.raises(ValueError, match=r'\[7\]'):
        metric.dataset_meta = dict(classes=CLASSES)


@pytest.mark.parametrize('hook', [True, False])
def test_json_goes_to_runner_work_dir(tmp_path, hook):
    """In a real Runner, ``MetricWorkDirHook`` hands the metric the run's
    work dir: records land in <work_dir>/longtail_metrics (val named by the
    iteration, test by the run's timestamp). Without the hook and without
    ``json_dir`` the metric writes nothing and says so in the log."""
    from tests.tiny_runner import build_runner, tiny_cfg
    work_dir = tmp_path / 'work'
    cfg = tiny_cfg(work_dir, max_iters=2, val_interval=2,
                   evaluator=dict(type='LongTailIoUMetric'),
                   custom_hooks=[dict(type='MetricWorkDirHook')] * hook)
    cfg.log_level = 'INFO'
    runner = build_runner(cfg)
    runner.train()
    runner.test()
    out_dir = work_dir / 'longtail_metrics'
    log_text = (work_dir / runner.timestamp /
                f'{runner.timestamp}.log').read_text()
    if not hook:
        assert not out_dir.exists()
        assert 'MetricWorkDirHook' in log_text  # the warning names the fix
        return
    record = json.loads((out_dir / 'val_iter2.json').read_text())
    assert record['iter'] == 2 and record['stage'] == 'val'
    assert record['work_dir'] == str(work_dir)
    assert record['run_timestamp'] == runner.timestamp
    assert (out_dir / 'latest_val.json').read_text() == \
        (out_dir / 'val_iter2.json').read_text()
    test = json.loads(
        (out_dir / f'test_{runner.timestamp}.json').read_text())
    assert test['stage'] == 'test'
    assert 'per class results' in log_text
