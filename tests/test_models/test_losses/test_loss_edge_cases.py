"""Edge cases, gradients, precision and configuration errors of every loss."""
import json

import pytest
import torch
from loss_cases import (CASES, COUNTS, DETACHED, NUM_CLASSES, build,
                        draw_blv_noise, make_batch, ref_pixel_loss, ref_reduce)

REGISTRY_NAMES = ('SoftmaxFocalLoss', 'ClassBalancedLoss',
                  'BalancedSoftmaxLoss', 'LDAMLoss', 'BLVLoss', 'PATLoss')
CLASS_WEIGHT = [1.0, 2.0, 0.5, 3.0, 1.5]


def _registered_losses():
    """Every loss class the plugin registers (region losses included)."""
    from mmseg.registry import MODELS

    from mmseg_longtail.models.losses.base import LongTailLoss
    return {name: cls for name, cls in MODELS.module_dict.items()
            if isinstance(cls, type) and issubclass(cls, LongTailLoss)
            and cls.__module__.startswith('mmseg_longtail.')}


REGISTERED = sorted(_registered_losses())


def registered_config(name: str) -> dict:
    cls = _registered_losses()[name]
    return dict(type=name, **(dict(class_counts=COUNTS)
                              if cls.requires_counts else {}))


def run(loss, z, y, seed=0, **kwargs):
    torch.manual_seed(seed)  # fixes BLV's draw
    return loss(z, y, **kwargs)


def test_every_registry_name_builds():
    import mmseg_longtail  # noqa: F401
    from mmseg.registry import MODELS
    for name in REGISTRY_NAMES:
        cfg = dict(type=name)
        if name not in ('SoftmaxFocalLoss', 'PATLoss'):
            cfg['class_counts'] = COUNTS
        loss = MODELS.build(cfg)
        assert type(loss).__name__ == name
        assert loss.loss_name.startswith('loss_')


def test_all_pixels_ignored(case):
    _, cfg = case
    z, y = make_batch()
    y[:] = 255
    for avg_non_ignore in (False, True):
        loss = build(cfg, avg_non_ignore=avg_non_ignore)
        zz = z.clone().requires_grad_()
        out = run(loss, zz, y)
        assert torch.isfinite(out) and out.item() == 0
        out.backward()
        assert zz.grad is not None and torch.isfinite(zz.grad).all()
        assert zz.grad.abs().max() == 0


def test_absent_classes_and_zero_count(case):
    name, cfg = case
    z, y = make_batch(dtype=torch.float64)
    y[y >= 3] = 1  # classes 3 and 4 (zero training count) absent
    loss = build(cfg)
    noise = draw_blv_noise(loss, z, 0) if name.startswith('blv') else None
    out = run(loss, z, y)
    want = ref_reduce(cfg, ref_pixel_loss(cfg, z, y, noise=noise), y)
    torch.testing.assert_close(out, want)
    # the zero-count class is present now: still finite
    y[0, 0, 0] = 4
    zz = z.clone().requires_grad_()
    out = run(loss, zz, y)
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(zz.grad).all()


def test_extreme_logits(case):
    _, cfg = case
    z, y = make_batch()
    z = torch.where(z > 0, 1e4, -1e4)
    loss = build(cfg)
    zz = z.clone().requires_grad_()
    out = run(loss, zz, y)
    out.backward()
    assert torch.isfinite(out)
    assert torch.isfinite(zz.grad).all()


@pytest.mark.parametrize('ignore_index', [-1, 11, 0])
def test_other_ignore_index(case, ignore_index):
    _, cfg = case
    z, y = make_batch(seed=2)
    if ignore_index == 0:  # class 0 is the ignored value here: relabel
        y = torch.where(y == 0, 1, y)
    yy = torch.where(y == 255, ignore_index, y)
    # one loss each: losses with online statistics count every call
    a = run(build(cfg), z, y, ignore_index=255)
    b = run(build(cfg), z, yy, ignore_index=ignore_index)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_reduction_none_and_sum(case):
    _, cfg = case
    z, y = make_batch(dtype=torch.float64)
    loss = build(cfg)
    none = run(loss, z, y, reduction_override='none')
    assert none.shape == y.shape
    assert (none[y == 255] == 0).all()
    total = run(loss, z, y, reduction_override='sum')
    assert total.dim() == 0
    torch.testing.assert_close(none.sum(), total)
    assert build(cfg, reduction='none')(z, y).shape == y.shape
    with pytest.raises(ValueError, match='reduction'):
        loss(z, y, reduction_override='max')


def test_class_weight(case):
    name, cfg = case
    cfg = dict(cfg, class_weight=CLASS_WEIGHT)
    z, y = make_batch(dtype=torch.float64)
    loss = build(cfg)
    noise = draw_blv_noise(loss, z, 0) if name.startswith('blv') else None
    out = run(loss, z, y)
    want = ref_reduce(cfg, ref_pixel_loss(cfg, z, y, noise=noise), y)
    torch.testing.assert_close(out, want)
    unweighted = run(build(case[1]), z, y)
    assert not torch.allclose(out, unweighted)


# a stop-gradient is not the numerical derivative: the detached cases are
# left out here, test_pat_detach_weight and test_seesaw_gradient check
# their gradient analytically
@pytest.mark.parametrize('name', [
    n for n in sorted(CASES)
    if not CASES[n].get('detach_weight') and n not in DETACHED])
def test_gradcheck_float64(name):
    cfg = CASES[name]
    z, y = make_batch(n=2, h=3, w=4, dtype=torch.float64, seed=7)
    loss = build(cfg, class_weight=CLASS_WEIGHT)

    def fn(x):
        return run(loss, x, y)  # same noise draw at every evaluation

    assert torch.autograd.gradcheck(fn, (z.clone().requires_grad_(), ),
                                    eps=1e-6, atol=1e-6)
    # per-pixel output: a random projection of the Jacobian suffices
    assert torch.autograd.gradcheck(
        lambda x: run(loss, x, y, reduction_override='none'),
        (z.clone().requires_grad_(), ), eps=1e-6, atol=1e-6,
        fast_mode=True)


def test_bf16_autocast_close_to_fp32(case):
    _, cfg = case
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, NUM_CLASSES, 1)
    x = torch.randn(2, 3, 16, 16)
    _, y = make_batch(h=16, w=16)
    loss = build(cfg)
    ref = run(loss, conv(x), y)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        logits = conv(x)
        assert logits.dtype == torch.bfloat16
        out = run(loss, logits, y)
    assert torch.isfinite(out)
    torch.testing.assert_close(out.float(), ref, rtol=3e-2, atol=3e-3)
    out.backward()
    assert all(torch.isfinite(p.grad).all() for p in conv.parameters())


def test_num_classes_check(case):
    _, cfg = case
    loss = build(cfg, class_weight=CLASS_WEIGHT)
    loss.check_num_classes(NUM_CLASSES)
    field = 'class_counts' if 'class_counts' in cfg else 'class_weight'
    with pytest.raises(ValueError, match=field):
        loss.check_num_classes(NUM_CLASSES + 1)
    z, y = make_batch(c=NUM_CLASSES + 1)
    with pytest.raises(ValueError, match=field):
        loss(z, y)


def test_stock_head_class_count_error_at_first_forward(tmp_path):
    """In a stock mmseg head (FCNHead, which does not tell its losses
    num_classes), a loss with the wrong number of class counts fails at the
    first training step: the loss, the field and both numbers named."""
    from tests.tiny_runner import (NUM_CLASSES as HEAD_CLASSES, build_runner,
                                   tiny_cfg, tiny_model)
    loss = dict(type='BalancedSoftmaxLoss', class_counts=[5, 3, 1])
    cfg = tiny_cfg(tmp_path, max_iters=1, model=tiny_model(loss))
    runner = build_runner(cfg)  # builds: the head does not check
    with pytest.raises(ValueError, match=r'^BalancedSoftmaxLoss: class_counts '
                       'has 3 '
                       f'entries but the model predicts {HEAD_CLASSES} '
                       'classes'):
        runner.train()


@pytest.mark.parametrize('head', ['UNetPlusPlusHead', 'AttentionUNetHead'])
def test_plugin_heads_check_class_counts_when_built(head):
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    cfg = dict(type=head, in_channels=[4, 8], channels=4, in_index=[0, 1],
               num_classes=3)
    MODELS.build(dict(cfg, loss_decode=dict(type='BalancedSoftmaxLoss',
                                            class_counts=[1, 2, 3])))
    with pytest.raises(ValueError, match='^BalancedSoftmaxLoss: class_counts '
                       'has 2 entries but the model predicts 3 classes'):
        MODELS.build(dict(cfg, loss_decode=[
            dict(type='CrossEntropyLoss'),
            dict(type='BalancedSoftmaxLoss', class_counts=[1, 2])]))


@pytest.mark.parametrize('name', REGISTERED)
@pytest.mark.parametrize('bad', [200, NUM_CLASSES, -1])
def test_out_of_range_labels_name_the_loss(name, bad):
    """Every loss of the plugin (region losses included) refuses a target
    value that is neither a class id nor ignore_index, naming itself and
    the value, instead of an IndexError or a silent change of the value."""
    loss = build(registered_config(name))
    z, y = make_batch()
    loss(z, y)  # valid labels (some ignored) pass
    y[0, 0, :2] = bad
    with pytest.raises(ValueError, match=rf'^{name}: label values '
                       rf'{bad} are outside the class ids 0\.\.'
                       f'{NUM_CLASSES - 1} and are not ignore_index=255'):
        loss(z, y)


COUNT_LOSSES = ['ClassBalancedLoss', 'BalancedSoftmaxLoss', 'LDAMLoss',
                'BLVLoss']


@pytest.mark.parametrize('name', COUNT_LOSSES)
def test_count_errors(name, tmp_path):
    with pytest.raises(ValueError, match='class_counts'):
        build(dict(type=name))
    with pytest.raises(ValueError, match='class_counts.*negative'):
        build(dict(type=name, class_counts=[10, -1, 3]))
    with pytest.raises(FileNotFoundError, match='class_counts'):
        build(dict(type=name, class_counts=str(tmp_path / 'missing.json')))
    with pytest.raises(ValueError, match='class_weight'):
        build(dict(type=name, class_counts=[1, 2, 3], class_weight=[1, 2]))
    with pytest.raises(ValueError, match='count_type'):
        build(dict(type=name, class_counts=[1, 2, 3], count_type='voxel'))
    # statistics file: pixel or image counts
    stats = dict(classes=['a', 'b', 'c'], ignore_index=255, num_images=4,
                 pixel_counts=[9000, 50, 0], image_counts=[4, 2, 0])
    path = tmp_path / 'stats.json'
    path.write_text(json.dumps(stats))
    for kind in ('pixel', 'image'):
        loss = build(dict(type=name, class_counts=str(path),
                          count_type=kind))
        assert loss.class_counts.tolist() == stats[f'{kind}_counts']


@pytest.mark.parametrize('cfg,field', [
    (dict(type='ClassBalancedLoss', class_counts=COUNTS, base='dice'),
     'base'),
    (dict(type='ClassBalancedLoss', class_counts=COUNTS, beta=1.0), 'beta'),
    (dict(type='ClassBalancedLoss', class_counts=COUNTS, beta='mean'),
     'beta'),
    (dict(type='BLVLoss', class_counts=COUNTS, mode='abs'), 'mode'),
    (dict(type='BLVLoss', class_counts=COUNTS, distribution='xavier'),
     'distribution'),
    (dict(type='BLVLoss', class_counts=COUNTS, sigma=-1), 'sigma'),
    (dict(type='PATLoss', normalize='image'), 'normalize'),
    (dict(type='PATLoss', tau=0), 'tau'),
    (dict(type='SoftmaxFocalLoss', gamma=-1), 'gamma'),
    (dict(type='LDAMLoss', class_counts=COUNTS, s=0), 's'),
    (dict(type='LDAMLoss', class_counts=COUNTS, drw_start_iter=-3),
     'drw_start_iter'),
    (dict(type='LDAMLoss', class_counts=COUNTS, drw_beta=1.5), 'drw_beta'),
    (dict(type='LDAMLoss', class_counts=COUNTS, drw_beta='auto'),
     'drw_beta'),
    (dict(type='SoftmaxFocalLoss', loss_name='focal'), 'loss_name'),
    (dict(type='SoftmaxFocalLoss', reduction='avg'), 'reduction'),
    (dict(type='PATLoss', class_weight=[1, -2]), 'class_weight'),
    (dict(type='PATLoss', class_counts=COUNTS), 'class_counts'),
])
def test_bad_config_names_field(cfg, field):
    with pytest.raises(ValueError, match=field):
        build(cfg)


def test_names_are_losses():
    for cfg in CASES.values():
        assert build(cfg).loss_name.startswith('loss_')
