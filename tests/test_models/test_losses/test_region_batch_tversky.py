"""The region losses' ``batch`` option, FocalTverskyLoss and the compound
base configs: against per-class loops over the papers' formulas, float64
gradcheck, ignore masking (also against mmseg's TverskyLoss), and each
preset training a head."""
from pathlib import Path

import pytest
import torch
from mmseg.registry import MODELS

import mmseg_longtail  # noqa: F401  (registers the losses)
from mmseg_longtail.models.losses.base import AVG_EPS

REPO = Path(__file__).resolve().parents[3]
LOSS_BASES = REPO / 'configs' / '_base_' / 'losses'
C = 4
IGNORE = 255


def make_batch(n=3, h=5, w=6, seed=0, ignore_frac=0.2):
    """float64 logits and labels; class 3 missing from image 0."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, C, h, w, generator=g, dtype=torch.float64) * 2
    label = torch.randint(0, C, (n, h, w), generator=g)
    label[0][label[0] == 3] = 0
    label[torch.rand(n, h, w, generator=g) < ignore_frac] = IGNORE
    return logits, label


def soft_target(label, seed=1):
    g = torch.Generator().manual_seed(seed)
    raw = torch.rand(label.shape[0], C, *label.shape[1:], generator=g,
                     dtype=torch.float64)**3
    return raw / raw.sum(1, keepdim=True) * (label != IGNORE).unsqueeze(1)


def class_pixels(logits, target, images):
    """Per class: the (x, y) values of the labelled pixels of ``images``."""
    p = torch.softmax(logits, 1)
    if target.dim() == 3:
        keep = target != IGNORE
        t = torch.stack([(target == k) for k in range(C)], 1).double()
    else:
        keep, t = target.sum(1) > 0, target
    return [(torch.cat([p[i, k][keep[i]] for i in images]),
             torch.cat([t[i, k][keep[i]] for i in images]))
            for k in range(C)]


def ref_term(kind, x, y, cfg):
    """One term's loss; product forms for one-hot ``y``, else L1."""
    s = cfg.get('smooth', 0.0)
    hard = bool(((y == 0) | (y == 1)).all())
    if kind == 'SoftDiceLoss':
        return 1 - (2 * (x * y).sum() + s) / (x.sum() + y.sum() + s)
    if kind == 'SoftJaccardLoss':
        inter = (x * y).sum()
        return 1 - (inter + s) / (x.sum() + y.sum() - inter + s)
    a, b, g = cfg.get('alpha', 0.3), cfg.get('beta', 0.7), cfg.get(
        'gamma', 1.0)
    if hard:
        tp, fp, fn = (x * y).sum(), (x * (1 - y)).sum(), ((1 - x) * y).sum()
    else:
        tp = torch.minimum(x, y).sum()
        fp, fn = (x - y).clamp_min(0).sum(), (y - x).clamp_min(0).sum()
    ti = (tp + s) / (tp + a * fp + b * fn + s)
    return (1 - ti)**(1 / g)


def ref_loss(cfg, logits, target):
    """(sum over terms, number of terms): loops over image groups and
    classes; GDL is one ratio per group (Sudre's formula)."""
    kind, n = cfg['type'], logits.shape[0]
    per_image = cfg.get('per_image', not cfg.get('batch', True))
    groups = [[i] for i in range(n)] if per_image else [list(range(n))]
    cw = cfg.get('class_weight') or [1.0] * C
    total, count = 0.0, 0.0
    for images in groups:
        pairs = class_pixels(logits, target, images)
        if kind == 'GeneralizedDiceLoss':
            w = [1 / float(y.sum())**2 if y.sum() > 0 else 0.0
                 for _, y in pairs]
            if not any(w):
                continue
            num = sum(2 * wk * (x * y).sum() for wk, (x, y) in zip(w, pairs))
            den = sum(wk * (x.sum() + y.sum()) for wk, (x, y) in zip(w, pairs))
            total, count = total + 1 - num / den, count + 1
            continue
        for k, (x, y) in enumerate(pairs):
            kept = y.sum() > 0 if cfg.get('classes', 'present') == \
                'present' else x.sum() + y.sum() > 0
            if kept:
                total = total + cw[k] * ref_term(kind, x, y, cfg)
                count += cw[k]
    return total, count


# ------------------------------------------------------ batch=True/False
@pytest.mark.parametrize('kind', ['SoftDiceLoss', 'SoftJaccardLoss',
                                  'GeneralizedDiceLoss', 'FocalTverskyLoss'])
@pytest.mark.parametrize('batch', [True, False])
def test_batch_option_matches_loops(kind, batch):
    logits, label = make_batch(seed=3)
    cfg = dict(type=kind, batch=batch)
    total, count = ref_loss(cfg, logits, label)
    loss = MODELS.build(cfg)
    assert loss.per_image is (not batch)
    assert loss(logits, label).item() == pytest.approx(
        float(total / (count + AVG_EPS)), rel=1e-10)
    # the two differ on this batch (the option does something)
    other, n_other = ref_loss(dict(cfg, batch=not batch), logits, label)
    assert abs(float(total / count) - float(other / n_other)) > 1e-3
    # same as per_image written the other way
    same = MODELS.build(dict(type=kind, per_image=not batch))
    assert torch.equal(same(logits, label), loss(logits, label))


def test_batch_option_errors_and_config_merge():
    for kwargs, match in ((dict(batch=True, per_image=True), 'batch=True'),
                          (dict(batch=False, per_image=False), 'batch='),
                          (dict(batch='yes'), 'batch must be')):
        with pytest.raises(ValueError, match=match):
            MODELS.build(dict(type='SoftDiceLoss', **kwargs))
    # a base config's per_image=False with batch=True: agrees, builds
    from mmengine.config import Config
    cfg = Config.fromfile(str(LOSS_BASES / 'dice.py'))
    cfg.merge_from_dict(dict(loss_decode=dict(batch=True)))
    assert MODELS.build(cfg.loss_decode).per_image is False


# ------------------------------------------------------ FocalTverskyLoss
FT_CASES = {
    'tversky': dict(type='FocalTverskyLoss'),
    'focal': dict(type='FocalTverskyLoss', gamma=4 / 3, smooth=0.5),
    'focal_img_all': dict(type='FocalTverskyLoss', gamma=2.0,
                          per_image=True, classes='all'),
    'weighted': dict(type='FocalTverskyLoss', alpha=0.6, beta=0.2,
                     gamma=1.5, class_weight=[1.0, 2.0, 0.5, 3.0]),
}


@pytest.mark.parametrize('name', sorted(FT_CASES))
@pytest.mark.parametrize('soft', [False, True])
def test_focal_tversky_matches_loops(name, soft):
    cfg = FT_CASES[name]
    logits, label = make_batch(seed=4)
    target = soft_target(label) if soft else label
    total, count = ref_loss(cfg, logits, target)
    loss = MODELS.build(cfg)
    assert loss.loss_name == 'loss_tversky'
    assert loss(logits, target).item() == pytest.approx(
        float(total / (count + AVG_EPS)), rel=1e-10)
    assert loss(logits, target, reduction_override='sum').item() == \
        pytest.approx(float(total), rel=1e-10)
    pixel = loss(logits, target, reduction_override='none')
    assert pixel.shape == label.shape and (pixel[label == IGNORE] == 0).all()
    assert pixel.sum().item() == pytest.approx(float(total), rel=1e-10)


@pytest.mark.parametrize('name', sorted(FT_CASES))
@pytest.mark.parametrize('soft', [False, True])
def test_focal_tversky_gradcheck(name, soft):
    logits, label = make_batch(n=2, h=3, w=4, seed=6)
    target = soft_target(label) if soft else label
    loss = MODELS.build(FT_CASES[name])
    z = logits.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: loss(v, target), (z, ),
                                    eps=1e-6, atol=1e-8)


def test_focal_tversky_special_cases():
    logits, label = make_batch(seed=5)
    for ab, other in ((0.5, 'SoftDiceLoss'), (1.0, 'SoftJaccardLoss')):
        ft = MODELS.build(dict(type='FocalTverskyLoss', alpha=ab, beta=ab))
        assert ft(logits, label).item() == pytest.approx(
            MODELS.build(dict(type=other))(logits, label).item(), rel=1e-12)
    # a perfect prediction: 0, finite gradient, also with 1/gamma < 1
    perfect = 1e4 * torch.nn.functional.one_hot(
        label.clamp(max=C - 1), C).permute(0, 3, 1, 2).double()
    z = perfect.requires_grad_(True)
    value = MODELS.build(FT_CASES['focal'])(z, label)
    value.backward()
    assert value.item() == 0 and torch.isfinite(z.grad).all()
    # beta weighs class 0's missed pixel, alpha its false alarm
    y = torch.tensor([[[0, 0, 1, 1]]])
    miss = torch.tensor([[[5., -5., -5., -5.]], [[-5., 5., 5., 5.]]])
    alarm = torch.tensor([[[5., 5., 5., -5.]], [[-5., -5., -5., 5.]]])
    only_0 = dict(type='FocalTverskyLoss', class_weight=[1.0, 0.0])
    recall = MODELS.build(dict(only_0, alpha=0.3, beta=0.7))
    precision = MODELS.build(dict(only_0, alpha=0.7, beta=0.3))
    for z, worse in ((miss[None], recall), (alarm[None], precision)):
        better = precision if worse is recall else recall
        assert worse(z.double(), y) > 1.5 * better(z.double(), y)


@pytest.mark.parametrize('fill', [50.0, float('inf'), float('nan')])
def test_focal_tversky_ignored_logits_change_nothing(fill):
    logits, label = make_batch(seed=7)
    ignored = (label == IGNORE).unsqueeze(1).expand_as(logits)
    loss = MODELS.build(FT_CASES['focal'])
    out = []
    for z in (logits, torch.where(ignored, fill, logits)):
        z = z.clone().requires_grad_(True)
        value = loss(z, label)
        value.backward()
        out.append((value, z.grad))
    assert torch.equal(out[0][0], out[1][0])
    assert torch.equal(out[0][1], out[1][1])
    label[:] = IGNORE
    z = logits.clone().requires_grad_(True)
    value = loss(z, label)
    value.backward()
    assert value.item() == 0 and (z.grad == 0).all()


def test_mmseg_tversky_lets_ignored_pixels_in():
    """Why the plugin has its own: mmseg's TverskyLoss drops the head's
    ignore_index (its own stays 255), so with another ignore_index the
    ignored pixels change its value; NaN logits there make it NaN. The
    plugin's loss is unchanged in both cases."""
    from mmseg.models.losses import TverskyLoss
    logits, label = make_batch(seed=8)
    ignored = (label == IGNORE).unsqueeze(1).expand_as(logits)
    moved = torch.where(ignored, -logits, logits)
    label_m1 = torch.where(label == IGNORE, -1, label)
    ours = MODELS.build(dict(type='FocalTverskyLoss', smooth=1.0))
    theirs = TverskyLoss(smooth=1.0)
    assert ours(logits, label_m1, ignore_index=-1).item() == \
        ours(moved, label_m1, ignore_index=-1).item()
    assert theirs(logits, label_m1, ignore_index=-1).item() != \
        pytest.approx(theirs(moved, label_m1, ignore_index=-1).item())
    nan = torch.where(ignored, float('nan'), logits)
    assert torch.isfinite(ours(nan, label))
    assert torch.isnan(theirs(nan, label))


def test_focal_tversky_bad_options_name_the_field():
    for kwargs, match in ((dict(alpha=-0.1), 'alpha'),
                          (dict(beta=-1), 'beta'),
                          (dict(alpha=0, beta=0), 'alpha \\+ beta'),
                          (dict(gamma=0), 'gamma'),
                          (dict(smooth=-1), 'smooth'),
                          (dict(classes='some'), 'classes')):
        with pytest.raises(ValueError, match=match):
            MODELS.build(dict(type='FocalTverskyLoss', **kwargs))


# ------------------------------------------------------------- presets
@pytest.mark.parametrize('name,types', [
    ('ce_dice', ['CrossEntropyLoss', 'SoftDiceLoss']),
    ('focal_dice', ['SoftmaxFocalLoss', 'SoftDiceLoss']),
    ('topk_dice', ['TopKCrossEntropyLoss', 'SoftDiceLoss']),
    ('focal_tversky', ['SoftmaxFocalLoss', 'FocalTverskyLoss']),
    ('recall', ['RecallLoss']),
    ('seesaw', ['SeesawLoss']),
    ('topk_ce', ['TopKCrossEntropyLoss']),
])
def test_base_configs_train_a_head(name, types):
    """Each base config builds in a decode head; every loss of it is
    reported under its own name and back-propagates."""
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
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=lab[None])
        samples.append(sample)
    seg = logits.float().requires_grad_(True)
    losses = head.loss_by_feat(seg, samples)
    names = [MODELS.build(c).loss_name for c in cfgs]
    assert sorted(k for k in losses if k.startswith('loss')) == sorted(names)
    total = sum(losses[k] for k in names)
    total.backward()
    assert torch.isfinite(total) and seg.grad.abs().sum() > 0
