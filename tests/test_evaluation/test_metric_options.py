"""LongTailIoUMetric's added statistics against hand-computed and
independent values: precision / recall, per-image and worst-q% mIoU, ECE /
SCE, the bootstrap interval (coverage on synthetic data), the metric
record (old records still load) and the collector's optional columns."""
import json
import math

import numpy as np
import pytest
import torch

import mmseg_longtail  # noqa: F401  (registers the metric)
from mmseg.registry import METRICS
from mmseg_longtail.evaluation.statistics import (bootstrap_interval,
                                                  calibration_errors,
                                                  calibration_histograms,
                                                  worst_mean)
from mmseg_longtail.experiments.records import (SplitMetrics,
                                                latest_metric_record,
                                                read_metric_record)
from mmseg_longtail.experiments.tables import (METRIC_FMT, OPTIONAL_METRICS,
                                               present_metrics)

IGNORE = 255


def sample(pred, label, logits=None):
    out = dict(pred_sem_seg=dict(data=torch.as_tensor(pred)[None]),
               gt_sem_seg=dict(data=torch.as_tensor(label)[None]))
    if logits is not None:
        out['seg_logits'] = dict(data=torch.as_tensor(logits))
    return out


def evaluate(cfg, samples, k, batch=2):
    metric = METRICS.build(dict(dict(type='LongTailIoUMetric',
                                     save_json=False), **cfg))
    metric.dataset_meta = dict(classes=tuple(f'c{i}' for i in range(k)))
    for i in range(0, len(samples), batch):
        metric.process({}, samples[i:i + batch])
    return metric, metric.evaluate(len(samples))


# --------------------------------------------------- precision / recall
def test_precision_recall_closed_form(tmp_path):
    label = [[0, 0, 1], [1, 2, IGNORE]]
    pred = [[0, 0, 0], [2, 2, 0]]  # the ignored pixel's 0 must not count
    # class 0: I=2 P=3 L=2; class 1: I=0 P=0 L=2; class 2: I=1 P=2 L=1
    precision = [2 / 3, math.nan, 1 / 2]
    recall = [1.0, 0.0, 1.0]
    metric, out = evaluate(dict(save_json=True, json_dir=str(tmp_path)),
                           [sample(pred, label)], 3)
    assert out['mPrecision'] == round(100 * (2 / 3 + 1 / 2) / 2, 2)
    assert out['mRecall'] == round(100 * 2 / 3, 2) == out['mAcc']
    record = json.loads((tmp_path / 'latest.json').read_text())
    assert record['per_class']['Precision'][1] is None  # 0 / 0
    np.testing.assert_allclose(
        [v for v in record['per_class']['Precision'] if v is not None],
        [100 * 2 / 3, 50.0], rtol=1e-12)
    np.testing.assert_allclose(record['per_class']['Recall'],
                               [100 * r for r in recall], rtol=1e-12)
    assert np.isnan(precision[1])


# ------------------------------------------------------------ per image
def two_images():
    """Image A: all class 0, predicted right (mIoU_A = 1). Image B: all
    class 1 (one pixel ignored, predicted 0), half predicted 0 (IoU_0 = 0,
    IoU_1 = 2/4 -> mIoU_B = 0.25). Image C: every pixel ignored."""
    a = sample([[0, 0], [0, 0]], [[0, 0], [0, 0]])
    b = sample([[0, 0, 1, 1, 0]], [[1, 1, 1, 1, IGNORE]])
    c = sample([[1, 0]], [[IGNORE, IGNORE]])
    return [a, b, c]


def test_two_images_dataset_vs_per_image_miou(tmp_path):
    # dataset level: class 0 I=4 U=6, class 1 I=2 U=4
    dataset_miou = (4 / 6 + 2 / 4) / 2 * 100
    per_image = (1.0 + 0.25) / 2 * 100  # image C has no labelled pixel
    metric, out = evaluate(dict(per_image=True, worst_q=50,
                                save_json=True, json_dir=str(tmp_path)),
                           two_images(), 2)
    assert out['mIoU'] == round(dataset_miou, 2)
    assert out['mIoU_img'] == round(per_image, 2)
    assert out['mIoU_img_worst'] == 25.0  # ceil(0.5 * 2) = 1 image: B
    record = json.loads((tmp_path / 'latest.json').read_text())
    assert record['version'] == 2
    assert record['per_image'] == dict(worst_q=50.0,
                                       mIoU=[100.0, 25.0, None])
    assert record['summary']['mIoU_img'] == pytest.approx(per_image)
    # off by default: no key, no section
    _, out = evaluate({}, two_images(), 2)
    assert 'mIoU_img' not in out and 'ECE' not in out
    assert 'mIoU_ci_low' not in out


@pytest.mark.parametrize('values,q,expected', [
    ([0.5, 0.1, 0.9, 0.3], 25, 0.1),          # ceil(1.0) = 1
    ([0.5, 0.1, 0.9, 0.3], 50, 0.2),          # the two lowest
    ([0.5, 0.1, 0.9, 0.3], 26, 0.2),          # ceil(1.04) = 2
    ([0.5, 0.1, 0.9, 0.3], 100, 0.45),
    ([0.5, 0.1, np.nan, 0.3], 10, 0.1),       # NaN: not an image
    (list(np.arange(1, 31) / 100), 10, 0.02),  # 3 of 30, no float slip
    ([np.nan], 10, np.nan),
])
def test_worst_q_percent(values, q, expected):
    got = worst_mean(np.asarray(values, dtype=float), q)
    if np.isnan(expected):
        assert np.isnan(got)
    else:
        assert got == pytest.approx(expected, rel=1e-12)


def test_worst_q_through_the_metric():
    # four images with per-image mIoU 1, 0.5, 0 (and 0.25 for B above)
    images = [sample([[0, 0]], [[0, 0]]), sample([[0, 1]], [[0, 0]]),
              sample([[1, 1]], [[0, 0]]), two_images()[1]]
    # image 2: IoU_0 = 1/2, IoU_1 = 0 -> 0.25; image 3: IoU_0 = 0 -> 0
    _, out = evaluate(dict(per_image=True, worst_q=50), images, 2)
    assert out['mIoU_img'] == round(100 * (1 + 0.25 + 0 + 0.25) / 4, 2)
    assert out['mIoU_img_worst'] == round(100 * (0 + 0.25) / 2, 2)


# ----------------------------------------------------------- calibration
def logits_of(prob):
    """Logits whose soft-max is ``prob`` (K, H, W)."""
    return torch.log(torch.as_tensor(prob, dtype=torch.float32))


def test_ece_closed_form():
    # confidences 0.85 (right), 0.85 (wrong), 0.65 (right), 0.75 (right),
    # and one ignored pixel; 10 bins:
    # bin 8: |1 - 1.7| = 0.7, bin 6: 0.35, bin 7: 0.25 -> ECE = 1.3 / 4
    p0 = np.array([[0.85, 0.85, 0.35, 0.75, 0.99]])
    prob = np.stack([p0, 1 - p0])
    label = np.array([[0, 1, 1, 0, IGNORE]])
    pred = prob.argmax(0)
    _, out = evaluate(dict(calibration=True, calibration_bins=10),
                      [sample(pred, label, logits_of(prob))], 2)
    assert out['ECE'] == pytest.approx(100 * 1.3 / 4, abs=1e-4)
    # two classes: the per-class bins mirror the top-class ones
    assert out['SCE'] == pytest.approx(100 * 1.3 / 4, abs=1e-4)


def reference_sce(prob, label, bins):
    """Static calibration error with explicit loops (Nixon et al.)."""
    k, n = prob.shape[0], label.size
    total = 0.0
    for c in range(k):
        pc = prob[c].ravel()
        hit = (label.ravel() == c).astype(float)
        idx = np.minimum((pc * bins).astype(int), bins - 1)
        for b in range(bins):
            m = idx == b
            if m.any():
                total += m.sum() / n * abs(hit[m].mean() - pc[m].mean())
    return total / k


def draw_calibrated(seed, images=12, k=4, size=48, scale=2.0):
    """Logits and labels drawn from their own soft-max."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(images):
        logits = torch.randn(k, size, size, generator=g) * scale
        prob = logits.softmax(0)
        label = torch.multinomial(prob.reshape(k, -1).T, 1,
                                  generator=g).T.reshape(size, size)
        out.append((logits, label))
    return out


def test_ece_near_zero_when_calibrated_and_large_when_overconfident():
    data = draw_calibrated(0)
    calibrated = [sample(z.argmax(0), y, z) for z, y in data]
    overconfident = [sample(z.argmax(0), y, 4 * z) for z, y in data]
    cfg = dict(calibration=True, calibration_bins=15)
    _, good = evaluate(cfg, calibrated, 4)
    _, bad = evaluate(cfg, overconfident, 4)
    assert good['ECE'] < 1.5 and good['SCE'] < 1.0
    assert bad['ECE'] > 15 and bad['SCE'] > 3
    # SCE against explicit loops on the pooled pixels
    prob = np.concatenate([z.softmax(0).reshape(4, -1).double().numpy()
                           for z, _ in data], 1)
    label = np.concatenate([y.reshape(-1).numpy() for _, y in data])
    assert good['SCE'] == pytest.approx(
        100 * reference_sce(prob, label, 15), abs=2e-4)


def test_ignored_pixels_enter_no_statistic():
    data = draw_calibrated(1, images=4, size=16)
    g = torch.Generator().manual_seed(3)
    runs = []
    for garbage in (False, True):
        samples = []
        for z, y in data:
            y = y.clone()
            y[:4] = IGNORE
            z, pred = z.clone(), z.argmax(0)
            if garbage:  # other logits and predictions where ignored
                z[:, :4] = torch.randn(z[:, :4].shape, generator=g) * 50
                pred = pred.clone()
                pred[:4] = torch.randint(0, 4, (4, 16), generator=g)
            samples.append(sample(pred, y, z))
        runs.append(evaluate(dict(calibration=True, per_image=True,
                                  bootstrap_samples=50), samples, 4)[1])
    assert runs[0] == runs[1]
    assert {'ECE', 'SCE', 'mIoU_img', 'mIoU_ci_low'} <= set(runs[0])


def test_calibration_histograms_sum_to_the_pixels():
    z = torch.randn(3, 5, 6)
    y = torch.randint(0, 3, (5, 6))
    y[0] = IGNORE
    hist = calibration_histograms(z, y, IGNORE, bins=7).numpy()
    assert hist.shape == (3, 4 * 7)
    assert hist[0, :7].sum() == 24 and hist[0, 7:].sum() == 3 * 24
    assert hist[2, 7:].sum() == 24  # one true class per pixel
    errors = calibration_errors(hist, 7)
    assert 0 <= errors['ECE'] <= 1 and errors['count'].sum() == 24


def test_calibration_needs_seg_logits():
    with pytest.raises(ValueError, match='calibration=True.*seg_logits'):
        evaluate(dict(calibration=True), [sample([[0]], [[0]])], 2)


# ------------------------------------------------------------- bootstrap
def synthetic_areas(rng, n, rates):
    """Per-image areas whose population IoU of class c is ``rates[c]``:
    union ~ U{20..120}, intersection ~ Binomial(union, rate)."""
    union = rng.integers(20, 121, size=(n, len(rates))).astype(float)
    inter = rng.binomial(union.astype(int), rates).astype(float)
    return inter, union


@pytest.mark.parametrize('level', [0.95, 0.6])
def test_bootstrap_interval_covers_the_known_mean_at_its_level(level):
    """300 synthetic evaluation sets of 80 images with known population
    mIoU (0.5) and tail IoU (0.2): the share of intervals covering the truth
    is the level, within 3 binomial sd (+0.01 for the percentile
    bootstrap's small-sample under-coverage)."""
    rates = np.array([0.8, 0.5, 0.2])
    truth = dict(mIoU=rates.mean(), tail=rates[2])
    rng = np.random.default_rng(0)
    experiments, hits = 300, dict(mIoU=0, tail=0)
    for e in range(experiments):
        inter, union = synthetic_areas(rng, 80, rates)
        ci = bootstrap_interval(inter, union, 200, level, seed=e,
                                groups=dict(tail=[2]))
        for key in hits:
            hits[key] += ci[key][0] <= truth[key] <= ci[key][1]
    tol = 3 * math.sqrt(level * (1 - level) / experiments) + 0.01
    for key, count in hits.items():
        assert abs(count / experiments - level) < tol, (key, count)


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    rng = np.random.default_rng(1)
    inter, union = synthetic_areas(rng, 30, np.array([0.7, 0.3]))
    a = bootstrap_interval(inter, union, 300, 0.9, seed=5)
    assert a == bootstrap_interval(inter, union, 300, 0.9, seed=5)
    assert a != bootstrap_interval(inter, union, 300, 0.9, seed=6)
    estimate = np.mean(inter.sum(0) / union.sum(0))
    assert a['mIoU'][0] < estimate < a['mIoU'][1]
    wider = bootstrap_interval(inter, union, 300, 0.99, seed=5)
    assert wider['mIoU'][0] < a['mIoU'][0] and wider['mIoU'][1] > a[
        'mIoU'][1]


def _quantile(sorted_values, q):
    """numpy's default ('linear') quantile of a sorted list, by hand."""
    h = (len(sorted_values) - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (h - lo) * (sorted_values[hi] -
                                           sorted_values[lo])


@pytest.mark.parametrize('level, seed', [(0.95, 0), (0.8, 3)])
def test_bootstrap_against_an_independent_resampling(level, seed):
    """The interval equals one computed image by image in plain Python from
    the same resamples (the same generator draws the same image counts):
    summed areas of the drawn images, IoU per class (undefined where the
    union is empty), their mean, and the quantiles."""
    rng = np.random.default_rng(4)
    n, samples = 9, 150
    inter, union = synthetic_areas(rng, n, np.array([0.9, 0.4, 0.1]))
    union[:4, 2] = inter[:4, 2] = 0  # class 2 absent from 4 images
    ci = bootstrap_interval(inter, union, samples, level, seed,
                            groups=dict(tail=[2]))
    draws = np.random.default_rng(seed).multinomial(
        n, [1.0 / n] * n, size=samples)
    values = dict(mIoU=[], tail=[])
    for counts in draws.tolist():
        ious = []
        for c in range(3):
            i = sum(k * inter[img, c] for img, k in enumerate(counts))
            u = sum(k * union[img, c] for img, k in enumerate(counts))
            ious.append(i / u if u > 0 else None)
        defined = [x for x in ious if x is not None]
        values['mIoU'].append(sum(defined) / len(defined))
        if ious[2] is not None:
            values['tail'].append(ious[2])
    tail = (1 - level) / 2
    for key, vals in values.items():
        vals = sorted(vals)
        expected = (_quantile(vals, tail), _quantile(vals, 1 - tail))
        assert ci[key] == pytest.approx(expected, rel=1e-12), key


def test_bootstrap_keys_through_the_metric(tmp_path):
    rng = np.random.default_rng(2)
    samples = []
    for _ in range(12):
        label = rng.choice(3, size=(6, 6), p=[0.6, 0.3, 0.1])
        pred = np.where(rng.random((6, 6)) < 0.7, label,
                        rng.integers(0, 3, (6, 6)))
        samples.append(sample(pred, label))
    cfg = dict(bootstrap_samples=200, bootstrap_level=0.9,
               frequency_groups=dict(head=[0], body=[1], tail=[2]),
               save_json=True, json_dir=str(tmp_path))
    _, out = evaluate(cfg, samples, 3)
    assert out['mIoU_ci_low'] <= out['mIoU'] <= out['mIoU_ci_high']
    assert out['mIoU_tail_ci_low'] <= out['mIoU_tail'] <= \
        out['mIoU_tail_ci_high']
    assert out['mIoU_ci_low'] < out['mIoU_ci_high']
    record = json.loads((tmp_path / 'latest.json').read_text())
    assert record['bootstrap']['samples'] == 200
    assert record['bootstrap']['mIoU'] == pytest.approx(
        [record['summary']['mIoU_ci_low'], record['summary']['mIoU_ci_high']])
    _, again = evaluate(dict(cfg, save_json=False), samples, 3)
    assert again == out  # seeded


# ------------------------------------------------------------- options
@pytest.mark.parametrize('cfg,field', [
    (dict(per_image='yes'), 'per_image'),
    (dict(worst_q=0), 'worst_q'),
    (dict(worst_q=150), 'worst_q'),
    (dict(worst_q='10'), 'worst_q'),
    (dict(calibration=1), 'calibration'),
    (dict(calibration_bins=0), 'calibration_bins'),
    (dict(calibration_bins=2.5), 'calibration_bins'),
    (dict(bootstrap_samples=-1), 'bootstrap_samples'),
    (dict(bootstrap_samples=True), 'bootstrap_samples'),
    (dict(bootstrap_level=1.0), 'bootstrap_level'),
    (dict(bootstrap_level=0), 'bootstrap_level'),
    (dict(bootstrap_seed=-1), 'bootstrap_seed'),
])
def test_bad_options_raise_naming_the_field(cfg, field):
    with pytest.raises(ValueError, match=f'^{field} must'):
        METRICS.build(dict(type='LongTailIoUMetric', **cfg))


# ------------------------------------------------- records and collector
def test_old_and_new_records_load(tmp_path):
    folder = tmp_path / 'run' / 'longtail_metrics'
    folder.mkdir(parents=True)
    old = dict(stage='test', summary=dict(mIoU=40.0, mIoU_tail=None),
               per_class=dict(IoU=[40.0, None]))
    (folder / 'latest_test.json').write_text(json.dumps(old))
    split = SplitMetrics.from_metric_record(
        'report', latest_metric_record(str(tmp_path / 'run'), 'test'))
    assert split.summary == dict(mIoU=40.0)
    # a new record, written by the metric with every option on
    samples = [sample(z.argmax(0), y, z) for z, y in draw_calibrated(
        2, images=3, size=8)]
    evaluate(dict(per_image=True, per_image_class=True, calibration=True,
                  bootstrap_samples=20, save_json=True,
                  json_dir=str(folder)), samples, 4)
    rec = read_metric_record(str(folder / 'latest.json'))
    assert {'per_image', 'calibration', 'bootstrap'} <= set(rec)
    assert len(rec['calibration']['reliability']['count']) == 15
    split = SplitMetrics.from_metric_record('report', rec)
    assert {'mPrecision', 'mRecall', 'mIoU_img', 'mIoU_img_worst', 'ECE',
            'SCE', 'mIoU_ci_low', 'mIoU_ci_high'} <= set(split.summary)
    assert present_metrics([old['summary'], None]) == []
    # every optional key but the tail group's (no groups here) and the
    # groups by the other frequency (not asked for)
    assert present_metrics([old['summary'], split.summary]) == [
        k for k in OPTIONAL_METRICS
        if 'tail' not in k and not k.endswith('freq')]
    assert all(k in METRIC_FMT for k in OPTIONAL_METRICS)
