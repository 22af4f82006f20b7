"""Every loss of the plugin on CUDA equals its CPU result: forward and
backward in float32 for the same inputs, with ignored pixels, another
ignore_index, class weights, every reduction and all-ignored batches; BLV
with the same noise tensor on both devices, plus the law of the noise drawn
on the device; CeCo's term likewise.

The losses: the shared cases of tests/test_models/test_losses/loss_cases.py
plus one default configuration of every other loss the plugin registers
(region losses, and losses added later, without an edit here).

Tolerances (float32, CUDA vs CPU; reductions sum in another order): values
``rtol=1e-5, atol=1e-6``, gradients ``rtol=1e-4, atol=1e-7``.
"""
import copy
import math

import pytest
import torch
from loss_cases import CASES, COUNTS, NUM_CLASSES, build, make_batch

from tests.test_cuda.conftest import to_cpu

pytestmark = pytest.mark.cuda

CLASS_WEIGHT = [1.0, 2.0, 0.5, 3.0, 1.5]
VALUE_TOL = dict(rtol=1e-5, atol=1e-6)
GRAD_TOL = dict(rtol=1e-4, atol=1e-7)


def registered_losses() -> dict:
    """Name -> class of every LongTailLoss the plugin registers."""
    from mmseg.registry import MODELS

    from mmseg_longtail.models.losses.base import LongTailLoss
    return {name: cls for name, cls in MODELS.module_dict.items()
            if isinstance(cls, type) and issubclass(cls, LongTailLoss)
            and cls.__module__.startswith('mmseg_longtail.')}


def loss_configs() -> dict:
    """The shared cases, then a default config of every registered loss
    they do not cover (class counts where the loss needs them)."""
    configs = dict(CASES)
    covered = {cfg['type'] for cfg in CASES.values()}
    for name, cls in sorted(registered_losses().items()):
        if name not in covered:
            cfg = dict(type=name)
            if cls.requires_counts:
                cfg['class_counts'] = COUNTS
            configs[name] = cfg
    return configs


CONFIGS = loss_configs()
# (forward keyword arguments, build overrides) of each variant
VARIANTS = {
    'mean': (dict(), dict()),
    'mean_non_ignore': (dict(), dict(avg_non_ignore=True)),
    'class_weight': (dict(), dict(class_weight=CLASS_WEIGHT)),
    'sum': (dict(reduction_override='sum'), dict()),
    'none': (dict(reduction_override='none'), dict()),
    'ignore_minus_one': (dict(ignore_index=-1), dict()),
}


def same_noise(loss, noise: torch.Tensor) -> None:
    """Make a loss that draws noise (BLV) add ``noise`` (on its device)."""
    if hasattr(loss, 'draw_noise'):
        loss.draw_noise = lambda like: noise.to(like.device,
                                                like.dtype).clone()


def pair(cfg: dict, device: str, **overrides):
    """The loss on the CPU and a copy of it on ``device``."""
    cpu = build(cfg, **overrides)
    return cpu, copy.deepcopy(cpu).to(device)


def run_both(cpu_loss, dev_loss, z, y, device, **kwargs):
    """(CPU value, CPU grad, device value, device grad) of one forward and
    backward (a fixed random cotangent for per-pixel outputs)."""
    results = []
    for loss, dev in ((cpu_loss, 'cpu'), (dev_loss, device)):
        zz = z.clone().to(dev).requires_grad_()
        out = loss(zz, y.to(dev), **kwargs)
        cot = torch.rand(out.shape, generator=torch.Generator().manual_seed(
            3)).to(dev) if out.dim() else torch.ones((), device=dev)
        (out * cot).sum().backward()
        results += [to_cpu(out), to_cpu(zz.grad)]
    return results


@pytest.mark.parametrize('variant', sorted(VARIANTS))
@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_forward_backward_match_cpu(name, variant, device):
    kwargs, overrides = VARIANTS[variant]
    z, y = make_batch(n=2, h=16, w=24, seed=1)
    if 'ignore_index' in kwargs:
        y = torch.where(y == 255, kwargs['ignore_index'], y)
    cpu_loss, dev_loss = pair(CONFIGS[name], device, **overrides)
    noise = torch.rand(z.shape, generator=torch.Generator().manual_seed(2))
    same_noise(cpu_loss, noise)
    same_noise(dev_loss, noise)
    out_cpu, grad_cpu, out_dev, grad_dev = run_both(cpu_loss, dev_loss, z, y,
                                                    device, **kwargs)
    assert torch.isfinite(out_dev).all() and torch.isfinite(grad_dev).all()
    torch.testing.assert_close(out_dev, out_cpu, **VALUE_TOL)
    torch.testing.assert_close(grad_dev, grad_cpu, **GRAD_TOL)
    if variant == 'none':  # ignored pixels: no loss on the device either
        assert (out_dev[y == 255] == 0).all()


@pytest.mark.parametrize('weighted', [False, True])
@pytest.mark.parametrize('name', ['bms', 'blv'])
def test_fused_cross_entropy_in_place_path_matches_cpu(name, weighted,
                                                       device):
    """Logits large enough for the fused cross-entropy of BMS / BLV to
    write the log-softmax over its buffer and turn it into the gradient in
    place (shifted_cross_entropy.INPLACE_MIN_NUMEL)."""
    from mmseg_longtail.models.losses.shifted_cross_entropy import \
        INPLACE_MIN_NUMEL
    g = torch.Generator().manual_seed(7)
    z = torch.randn(2, NUM_CLASSES, 128, 256, generator=g) * 3
    y = torch.randint(0, NUM_CLASSES, (2, 128, 256), generator=g)
    y[torch.rand(y.shape, generator=g) < 0.1] = 255
    assert z.numel() >= INPLACE_MIN_NUMEL
    overrides = dict(class_weight=CLASS_WEIGHT) if weighted else {}
    cpu_loss, dev_loss = pair(CONFIGS[name], device, **overrides)
    noise = torch.rand(z.shape, generator=g)
    same_noise(cpu_loss, noise)
    same_noise(dev_loss, noise)
    out_cpu, grad_cpu, out_dev, grad_dev = run_both(cpu_loss, dev_loss, z, y,
                                                    device)
    torch.testing.assert_close(out_dev, out_cpu, **VALUE_TOL)
    torch.testing.assert_close(grad_dev, grad_cpu, **GRAD_TOL)


@pytest.mark.parametrize('avg_non_ignore', [False, True])
@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_all_ignored_batch(name, avg_non_ignore, device):
    z, y = make_batch(n=2, h=8, w=8)
    y[:] = 255
    loss = build(CONFIGS[name], avg_non_ignore=avg_non_ignore).to(device)
    zz = z.to(device).requires_grad_()
    torch.manual_seed(0)
    out = loss(zz, y.to(device))
    out.backward()
    assert torch.isfinite(out) and out.item() == 0
    assert torch.isfinite(zz.grad).all() and zz.grad.abs().max() == 0


def test_every_registered_loss_is_covered():
    types = {cfg['type'] for cfg in CONFIGS.values()}
    assert set(registered_losses()) <= types


# ------------------------------------------------------------- BLV's noise
@pytest.mark.parametrize('mode', ['official', 'paper'])
def test_blv_gaussian_noise_law_on_device(mode, device):
    """The offsets drawn on the device for the rarest class (r = 1) follow
    the clamped normal: P(|v| = 1) and quantiles of |v| from erf, within 4
    standard errors; mean of the sign in paper mode; a fresh draw each
    call, the same one after the same seed."""
    sigma = 4.0
    loss = build(dict(type='BLVLoss', class_counts=COUNTS, sigma=sigma,
                      mode=mode)).to(device)
    like = torch.zeros(2, NUM_CLASSES, 256, 512, device=device)
    torch.manual_seed(1)
    draw = loss.draw_variation(like)
    assert draw.device == like.device and draw.dtype == like.dtype
    v = draw[:, NUM_CLASSES - 1].reshape(-1).double().cpu()  # r = 1
    n = v.numel()
    p_clamped = 1 - math.erf(1 / (sigma * math.sqrt(2)))
    tol = 4 * math.sqrt(p_clamped * (1 - p_clamped) / n)
    assert abs((v.abs() == 1).double().mean().item() - p_clamped) < tol
    for t in (0.1, 0.3, 0.6, 0.9):
        p = math.erf(t / (sigma * math.sqrt(2)))  # P(|v| <= t)
        got = (v.abs() <= t).double().mean().item()
        assert abs(got - p) < 4 * math.sqrt(p * (1 - p) / n), t
    if mode == 'official':
        assert (v >= 0).all()
    else:
        # zero mean: |mean| within 4 standard errors
        assert abs(v.mean().item()) < 4 * v.std().item() / math.sqrt(n)
    torch.manual_seed(1)
    assert torch.equal(loss.draw_variation(like), draw)
    assert not torch.equal(loss.draw_variation(like), draw)


def test_blv_uniform_noise_moments_on_device(device):
    """Uniform(0, 1) (official, sigma=1) per element: mean 1/2 and
    variance 1/12 of the rarest class's offsets, within 4 standard
    errors."""
    loss = build(dict(type='BLVLoss', class_counts=COUNTS, sigma=1.0,
                      distribution='uniform')).to(device)
    torch.manual_seed(2)
    v = loss.draw_variation(torch.zeros(2, NUM_CLASSES, 256, 512,
                                        device=device))
    v = v[:, NUM_CLASSES - 1].reshape(-1).double().cpu()
    n = v.numel()
    assert 0 <= v.min() and v.max() <= 1
    assert abs(v.mean().item() - 0.5) < 4 * math.sqrt(1 / 12 / n)
    # Var of (U - 1/2)^2 is 1/180
    assert abs(v.var().item() - 1 / 12) < 4 * math.sqrt(1 / 180 / n)


def test_blv_loss_with_device_noise_is_ce_of_its_offsets(device):
    """The fused loss on the device is the cross-entropy of the logits plus
    the offsets drawn there (same seed)."""
    loss = build(dict(type='BLVLoss', class_counts=COUNTS)).to(device)
    z, y = make_batch(n=2, h=16, w=24)
    z, y = z.to(device), y.to(device)
    torch.manual_seed(4)
    offsets = loss.draw_variation(z)
    torch.manual_seed(4)
    got = loss(z, y, reduction_override='none')
    want = torch.nn.functional.cross_entropy(z + offsets, y,
                                             reduction='none',
                                             ignore_index=255)
    torch.testing.assert_close(got, want, **VALUE_TOL)


# ------------------------------------------------------------- CeCo's term
def ceco_pair(device, **kwargs):
    from mmseg_longtail.models.decode_heads import CeCoBranch
    torch.manual_seed(0)
    cpu = CeCoBranch(6, NUM_CLASSES, class_counts=COUNTS, channels=8,
                     **kwargs).train()
    return cpu, copy.deepcopy(cpu).to(device)


@pytest.mark.parametrize('resize_mode', ['label', 'feature'])
@pytest.mark.parametrize('freeze', [False, True])
def test_ceco_term_matches_cpu(resize_mode, freeze, device):
    cpu, dev = ceco_pair(device, resize_mode=resize_mode, freeze=freeze)
    g = torch.Generator().manual_seed(5)
    feat = torch.randn(2, 6, 8, 12, generator=g)
    _, labels = make_batch(n=2, h=16, w=24, seed=6)
    grads = []
    for branch, dev_name in ((cpu, 'cpu'), (dev, device)):
        f = feat.to(dev_name).requires_grad_()
        out = branch(f, labels.to(dev_name))
        out.backward()
        grads.append((to_cpu(out), to_cpu(f.grad),
                      {k: to_cpu(p.grad) for k, p in branch.named_parameters()
                       if p.grad is not None}))
    (out_c, feat_c, params_c), (out_d, feat_d, params_d) = grads
    assert torch.isfinite(out_d) and out_d > 0
    torch.testing.assert_close(out_d, out_c, **VALUE_TOL)
    torch.testing.assert_close(feat_d, feat_c, **GRAD_TOL)
    assert params_d.keys() == params_c.keys()
    for key in params_c:
        torch.testing.assert_close(params_d[key], params_c[key], rtol=1e-4,
                                   atol=1e-6, msg=key)


def test_ceco_term_all_ignored_on_device(device):
    _, dev = ceco_pair(device)
    feat = torch.randn(2, 6, 4, 4, device=device, requires_grad=True)
    out = dev(feat, torch.full((2, 8, 8), 255, device=device))
    out.backward()
    assert out.item() == 0.0 and torch.isfinite(feat.grad).all()
