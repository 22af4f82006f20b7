"""Region losses (SoftJaccardLoss, SoftDiceLoss, GeneralizedDiceLoss)
against independent computations: the IoU / Dice of LongTailIoUMetric for
one-hot predictions, explicit per-class loops over the papers' product
formulas (hard labels) and L1 formulas (soft labels), float64 gradcheck,
ignore masking, the configs, and build-time errors."""
from pathlib import Path

import numpy as np
import pytest
import torch

import mmseg_longtail  # noqa: F401  (registers the losses and the metric)
from mmseg.registry import METRICS, MODELS
from mmseg_longtail.models.losses import generalized_dice_weights
from mmseg_longtail.models.losses.base import AVG_EPS

REPO = Path(__file__).resolve().parents[3]
LOSS_BASES = REPO / 'configs' / '_base_' / 'losses'
C = 4
IGNORE = 255

# name -> config; every region loss and its options
CASES = {
    'jaccard': dict(type='SoftJaccardLoss'),
    'jaccard_all': dict(type='SoftJaccardLoss', classes='all'),
    'jaccard_img_smooth': dict(
        type='SoftJaccardLoss', per_image=True, smooth=0.5),
    'jaccard_weighted': dict(
        type='SoftJaccardLoss', class_weight=[1.0, 2.0, 0.5, 3.0]),
    'dice': dict(type='SoftDiceLoss'),
    'dice_vnet': dict(type='SoftDiceLoss', exponent=2),
    'dice_all_img': dict(type='SoftDiceLoss', classes='all', per_image=True),
    'dice_smooth_weighted': dict(
        type='SoftDiceLoss', smooth=1.0, class_weight=[0.5, 1.0, 2.0, 1.0]),
    'gdice': dict(type='GeneralizedDiceLoss'),
    'gdice_all_img': dict(
        type='GeneralizedDiceLoss', classes='all', per_image=True),
    'gdice_weighted': dict(
        type='GeneralizedDiceLoss', class_weight=[1.0, 2.0, 0.5, 3.0]),
}


def build(cfg, **overrides):
    return MODELS.build(dict(cfg, **overrides))


def make_batch(n=2, c=C, h=5, w=6, seed=0, ignore_frac=0.2, absent=3):
    """Random float64 logits and labels; class ``absent`` is missing from
    image 0 and ~20% of the pixels are ignored."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, h, w, generator=g, dtype=torch.float64) * 2
    label = torch.randint(0, c, (n, h, w), generator=g)
    if absent is not None:
        label[0][label[0] == absent] = 0
    label[torch.rand(n, h, w, generator=g) < ignore_frac] = IGNORE
    return logits, label


def soft_target(label, c=C, seed=1):
    """Soft labels (Dirichlet-like rows) at labelled pixels, zero rows at
    ignored ones."""
    g = torch.Generator().manual_seed(seed)
    raw = torch.rand(label.shape[0], c, *label.shape[1:], generator=g,
                     dtype=torch.float64)**3
    probs = raw / raw.sum(1, keepdim=True)
    return probs * (label != IGNORE).unsqueeze(1)


# ------------------------------------------------------------ references
def _terms(cfg, p, t, keep):
    """(image ids, class) pairs of the terms: one per class over the
    batch, or per (image, class) with per_image."""
    images = ([[i] for i in range(p.shape[0])] if cfg.get('per_image')
              else [list(range(p.shape[0]))])
    for ids in images:
        yield ids, [(p[i][:, keep[i]], t[i][:, keep[i]]) for i in ids]


def ref_region(cfg, logits, target):
    """Independent loss value: explicit per-class loops.

    Hard ``target`` (N, H, W): the papers' product forms (soft Jaccard
    ``<x,y> / (|x|+|y|-<x,y>)``, soft Dice ``2<x,y> / (|x|+|y|)``, V-Net
    ``2<x,y> / (|x|^2+|y|^2)``, Sudre's GDL with ``w = 1/n^2``); soft
    ``target`` (N, C, H, W): the L1 forms (Wang et al.)."""
    p = torch.softmax(logits, 1)
    if target.dim() == 3:
        keep = target != IGNORE
        t = torch.stack([(target == k) for k in range(C)], 1).double()
        hard = True
    else:
        keep = target.sum(1) > 0
        t = target
        hard = False
    kind, smooth = cfg['type'], cfg.get('smooth', 0.0)
    cw = cfg.get('class_weight') or [1.0] * C
    total, count = 0.0, 0.0
    for _, parts in _terms(cfg, p, t, keep):
        xs = [torch.cat([x[k] for x, _ in parts]) for k in range(C)]
        ys = [torch.cat([y[k] for _, y in parts]) for k in range(C)]
        if kind == 'GeneralizedDiceLoss':
            n = [float(y.sum()) for y in ys]
            present = [v > 0 for v in n]
            if not any(present):
                continue
            w = [1.0 / v**2 if v > 0 else 0.0 for v in n]
            if cfg.get('classes') == 'all':
                w = [wk if pk else max(w) for wk, pk in zip(w, present)]
            w = [wk * a for wk, a in zip(w, cw)]
            if hard:
                num = sum(2 * wk * (x * y).sum()
                          for wk, x, y in zip(w, xs, ys))
            else:
                num = sum(wk * (x.sum() + y.sum() - (x - y).abs().sum())
                          for wk, x, y in zip(w, xs, ys))
            den = sum(wk * (x.sum() + y.sum()) for wk, x, y in zip(w, xs, ys))
            total, count = total + 1 - num / den, count + 1
            continue
        for k in range(C):
            x, y = xs[k], ys[k]
            if cfg.get('classes', 'present') == 'present':
                kept = y.sum() > 0
            else:
                kept = x.sum() + y.sum() > 0
            if not kept:
                continue
            if kind == 'SoftJaccardLoss':
                if hard:
                    inter = (x * y).sum()
                    union = x.sum() + y.sum() - inter
                else:
                    diff = (x - y).abs().sum()
                    inter = (x.sum() + y.sum() - diff) / 2
                    union = (x.sum() + y.sum() + diff) / 2
                score = (inter + smooth) / (union + smooth)
            elif cfg.get('exponent', 1) == 2:
                score = (2 * (x * y).sum() + smooth) / (
                    (x * x).sum() + (y * y).sum() + smooth)
            elif hard:
                score = (2 * (x * y).sum() + smooth) / (
                    x.sum() + y.sum() + smooth)
            else:
                score = (x.sum() + y.sum() - (x - y).abs().sum() + smooth) / (
                    x.sum() + y.sum() + smooth)
            total, count = total + cw[k] * (1 - score), count + cw[k]
    return total, count


def ref_mean(cfg, logits, target):
    total, count = ref_region(cfg, logits, target)
    return total / (count + AVG_EPS)


def metric_areas(pred, label):
    """Per-class areas and IoU / Dice as LongTailIoUMetric computes them
    (its own code path, unrounded)."""
    metric = METRICS.build(dict(type='LongTailIoUMetric', save_json=False))
    metric.dataset_meta = dict(classes=tuple(f'c{i}' for i in range(C)))
    metric.process({}, [
        dict(pred_sem_seg=dict(data=p[None]), gt_sem_seg=dict(data=t[None]))
        for p, t in zip(pred, label)
    ])
    return metric.per_class_metrics(metric.results)


# ----------------------------------------------------------------- tests
@pytest.mark.parametrize('name', sorted(CASES))
@pytest.mark.parametrize('soft', [False, True])
def test_matches_reference(name, soft):
    cfg = CASES[name]
    logits, label = make_batch(seed=3)
    target = soft_target(label) if soft else label
    loss = build(cfg)
    total, count = ref_region(cfg, logits, target)
    assert float(count) > 0  # the case exercises something
    got = loss(logits, target)
    assert got.item() == pytest.approx(
        float(total / (count + AVG_EPS)), rel=1e-10)
    assert loss(logits, target, reduction_override='sum').item() == \
        pytest.approx(float(total), rel=1e-10)
    # 'none': the per-pixel map sums to the 'sum' value
    pixel = loss(logits, target, reduction_override='none')
    assert pixel.shape == label.shape
    assert pixel.sum().item() == pytest.approx(float(total), rel=1e-10)
    assert loss(logits, target, avg_factor=7.0).item() == pytest.approx(
        float(total) / (7.0 + AVG_EPS), rel=1e-10)


@pytest.mark.parametrize('kind,key,exponent', [
    ('SoftJaccardLoss', 'IoU', None),
    ('SoftDiceLoss', 'Dice', 1),
    ('SoftDiceLoss', 'Dice', 2),
])
def test_one_hot_predictions_give_one_minus_metric(kind, key, exponent):
    """Logits 1e4 * one-hot: soft-max is exactly one-hot in float64, and the
    loss is 1 - IoU (1 - Dice) per class, as the metric computes it."""
    _, label = make_batch(n=3, h=7, w=8, seed=5)
    g = torch.Generator().manual_seed(9)
    pred = torch.randint(0, C - 1, label.shape, generator=g)  # 3 never
    label[label == 2] = 0  # 2: predicted, never labelled
    logits = 1e4 * torch.nn.functional.one_hot(pred, C).permute(
        0, 3, 1, 2).double()
    extra = {} if exponent is None else dict(exponent=exponent)
    areas = metric_areas(pred, label)
    score = np.asarray(areas[key], dtype=np.float64)
    labelled = areas['area_label'] > 0
    assert not np.isnan(score).any() and labelled.tolist() == [
        True, True, False, True]
    # 'all': the classes of the metric's mean (prediction or label)
    loss = build(dict(type=kind, classes='all', **extra))
    defined = ~np.isnan(score)
    assert loss(logits, label, reduction_override='sum').item() == \
        pytest.approx((1 - score[defined]).sum(), rel=1e-12, abs=1e-12)
    assert loss(logits, label).item() == pytest.approx(
        (1 - score[defined]).sum() / (defined.sum() + AVG_EPS), rel=1e-12)
    # 'present' (default): the labelled classes only
    loss = build(dict(type=kind, **extra))
    assert loss(logits, label).item() == pytest.approx(
        (1 - score[labelled]).sum() / (labelled.sum() + AVG_EPS), rel=1e-12)
    # per image: the metric on each image alone
    loss = build(dict(type=kind, per_image=True, **extra))
    per_image = []
    for n in range(label.shape[0]):
        a = metric_areas(pred[n:n + 1], label[n:n + 1])
        per_image += list(1 - np.asarray(a[key])[a['area_label'] > 0])
    assert loss(logits, label).item() == pytest.approx(
        sum(per_image) / (len(per_image) + AVG_EPS), rel=1e-12)


@pytest.mark.parametrize('name', sorted(CASES))
@pytest.mark.parametrize('soft', [False, True])
def test_ignored_logits_change_neither_value_nor_gradient(name, soft):
    logits, label = make_batch(seed=4)
    target = soft_target(label) if soft else label
    ignored = (label == IGNORE).unsqueeze(1).expand_as(logits)
    assert ignored.any()
    loss = build(CASES[name])
    results = []
    for fill in (None, 50.0, float('inf'), float('nan')):
        z = logits.clone()
        if fill is not None:
            noise = torch.randn_like(z) * fill if fill == 50.0 else fill
            z = torch.where(ignored, noise, z)
        z.requires_grad_(True)
        value = loss(z, target)
        value.backward()
        results.append((value.detach(), z.grad))
    value0, grad0 = results[0]
    assert grad0[~ignored].abs().sum() > 0
    for value, grad in results[1:]:
        assert torch.equal(value, value0)
        assert torch.equal(grad, grad0)
        assert torch.all(grad[ignored] == 0)


@pytest.mark.parametrize('name', sorted(CASES))
@pytest.mark.parametrize('soft', [False, True])
def test_gradcheck_float64(name, soft):
    logits, label = make_batch(n=2, h=3, w=4, seed=6)
    target = soft_target(label) if soft else label
    loss = build(CASES[name])
    z = logits.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: loss(v, target), (z, ),
                                    eps=1e-6, atol=1e-8)


def test_soft_target_equal_to_prediction_gives_zero():
    """The L1 (and V-Net) forms are 0 only where x = y, also for soft
    targets; the product-form soft Jaccard would not be."""
    logits, label = make_batch(seed=7, ignore_frac=0.0)
    target = torch.softmax(logits, 1)
    for name in ('jaccard', 'dice', 'dice_vnet', 'gdice'):
        assert build(CASES[name])(logits, target).item() == pytest.approx(
            0.0, abs=1e-12), name
    x, y = target, target
    inter = (x * y).sum((0, 2, 3))
    product_form = 1 - inter / (x.sum((0, 2, 3)) * 2 - inter)
    assert product_form.mean() > 0.1  # the alternative is not 0


def test_one_hot_soft_target_equals_hard_labels():
    logits, label = make_batch(seed=8)
    onehot = torch.stack([(label == k) for k in range(C)], 1).double()
    for name, cfg in CASES.items():
        loss = build(cfg)
        assert loss(logits, onehot).item() == pytest.approx(
            loss(logits, label).item(), rel=1e-12), name


def test_generalized_dice_weights_are_inverse_squared_volumes():
    volume = torch.tensor([1.0, 2.0, 4.0, 1000.0, 0.25, 0.0],
                          dtype=torch.float64)
    w = generalized_dice_weights(volume, eps=1.0)
    assert torch.equal(w[:4], 1.0 / volume[:4]**2)
    assert torch.equal(w[4:], torch.ones(2, dtype=torch.float64))  # clamp
    w = generalized_dice_weights(volume, eps=0.1)
    assert w[4].item() == pytest.approx(16.0) and w[5].item() == \
        pytest.approx(100.0)
    # in the loss: equal-volume classes are equal, a class with half the
    # pixels weighs 4x: doubling every volume leaves the loss unchanged
    # (the weights scale as 1/n^2 and cancel in the ratio)
    logits, label = make_batch(n=1, h=4, w=4, seed=2, ignore_frac=0.0,
                               absent=None)
    loss = build(CASES['gdice'])
    twice = loss(torch.cat([logits, logits], -1), torch.cat([label, label],
                                                            -1))
    assert twice.item() == pytest.approx(loss(logits, label).item(),
                                         rel=1e-12)
    # and the loss is Sudre's product formula with w = 1 / n^2
    p = torch.softmax(logits, 1)[0]
    onehot = torch.stack([(label[0] == k) for k in range(C)]).double()
    n = onehot.sum((1, 2))
    w = torch.where(n > 0, 1 / n.clamp_min(1)**2, 0.0)
    gdl = 1 - 2 * (w * (p * onehot).sum((1, 2))).sum() / (
        w * (p.sum((1, 2)) + n)).sum()
    assert loss(logits, label).item() == pytest.approx(
        gdl.item() / (1 + AVG_EPS), rel=1e-12)


@pytest.mark.parametrize('name', sorted(CASES))
def test_all_ignored_is_zero_with_zero_gradient(name):
    logits, label = make_batch(seed=1)
    label[:] = IGNORE
    z = logits.clone().requires_grad_(True)
    value = build(CASES[name])(z, label)
    value.backward()
    assert value.item() == 0 and torch.all(z.grad == 0)


def test_pixel_weight_and_float32():
    logits, label = make_batch(seed=2)
    loss = build(CASES['jaccard'])
    base = loss(logits, label)
    ones = torch.ones(label.shape, dtype=torch.float64)
    assert loss(logits, label, weight=ones).item() == pytest.approx(
        base.item(), rel=1e-12)
    assert loss(logits, label, weight=2 * ones).item() == pytest.approx(
        2 * base.item(), rel=1e-12)
    got32 = loss(logits.float(), label)
    assert got32.dtype == torch.float32
    assert got32.item() == pytest.approx(base.item(), rel=1e-5)


@pytest.mark.parametrize('cfg,match', [
    (dict(type='SoftJaccardLoss', classes='some'), 'classes'),
    (dict(type='SoftJaccardLoss', per_image='yes'), 'per_image'),
    (dict(type='SoftJaccardLoss', smooth=-1.0), 'smooth'),
    (dict(type='SoftJaccardLoss', loss_name='jaccard'), 'loss_name'),
    (dict(type='SoftDiceLoss', exponent=3), 'exponent'),
    (dict(type='SoftDiceLoss', smooth=float('nan')), 'smooth'),
    (dict(type='GeneralizedDiceLoss', eps=0.0), 'eps'),
    (dict(type='GeneralizedDiceLoss', class_weight=[1.0, -1.0]),
     'class_weight'),
    (dict(type='SoftDiceLoss', class_counts=[1, 2]), 'class_counts'),
])
def test_bad_options_fail_at_build_naming_the_field(cfg, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(cfg)


def test_bad_targets_fail_naming_label():
    logits, label = make_batch()
    loss = build(CASES['dice'])
    with pytest.raises(ValueError, match='label must be'):
        loss(logits, label[:, :3])
    with pytest.raises(ValueError, match='label: a soft target'):
        loss(logits, torch.zeros_like(logits, dtype=torch.long))
    with pytest.raises(ValueError, match='class_weight has 4'):
        build(CASES['jaccard_weighted'])(logits[:, :3], label.clamp(max=2))


# ---------------------------------------------------------- configs
@pytest.mark.parametrize('name,types', [
    ('jaccard', ['SoftJaccardLoss']),
    ('dice', ['SoftDiceLoss']),
    ('gdice', ['GeneralizedDiceLoss']),
    ('ce_jaccard', ['CrossEntropyLoss', 'SoftJaccardLoss']),
])
def test_base_configs_build_and_train_a_head(name, types):
    """Each base config builds; in a decode head (alone or as CE + Jaccard
    list) every loss is reported under its own name and back-propagates."""
    from mmengine.config import Config
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    cfg = Config.fromfile(str(LOSS_BASES / f'{name}.py')).loss_decode
    cfgs = cfg if isinstance(cfg, list) else [cfg]
    assert [c['type'] for c in cfgs] == types
    head = MODELS.build(dict(
        type='FCNHead', in_channels=3, channels=4, num_convs=1,
        num_classes=C, loss_decode=cfg, align_corners=False))
    logits, label = make_batch(h=8, w=8)
    samples = []
    for lab in label:
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=lab[None])
        samples.append(s)
    seg = logits.float().requires_grad_(True)
    losses = head.loss_by_feat(seg, samples)
    names = [MODELS.build(c).loss_name for c in cfgs]
    assert sorted(k for k in losses if k.startswith('loss')) == sorted(names)
    total = sum(losses[k] for k in names)
    total.backward()
    assert torch.isfinite(total) and seg.grad.abs().sum() > 0
