"""Loss values against methods.md: check tables, CE equivalences, margins,
class-balanced weights, BLV statistics, PAT mask normalisation, DRW."""
import math

import numpy as np
import pytest
import torch
from loss_cases import (CASES, COUNTS, NUM_CLASSES, build, draw_blv_noise,
                        make_batch, ref_cb_weights, ref_ldam_margins,
                        ref_pat_mask_mean, ref_pixel_loss, ref_reduce)

PROBS = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


def logits_for_probs(probs):
    """Two-class logits (8, 2, 1, 1) whose class-0 probability is ``p``."""
    p = torch.tensor(probs, dtype=torch.float64)
    z = torch.stack([torch.log(p), torch.log1p(-p)], 1)
    return z.view(-1, 2, 1, 1), torch.zeros(len(probs), 1, 1,
                                            dtype=torch.long)


@pytest.mark.parametrize('gamma,expected', [
    (2.0, [1.03, 0.59, 0.33, 0.17, 0.08, 0.03, 0.01, 0.00]),
    (5.0, [0.53, 0.20, 0.07, 0.02, 0.01, 0.00, 0.00, 0.00]),
])
def test_focal_check_values(gamma, expected):
    z, y = logits_for_probs(PROBS)
    loss = build(dict(type='SoftmaxFocalLoss', gamma=gamma))
    values = loss(z, y, reduction_override='none').view(-1)
    assert [round(v, 2) for v in values.tolist()] == expected


@pytest.mark.parametrize('tau,expected', [
    (2.0, [1.08, 0.85, 0.68, 0.54, 0.42, 0.31, 0.20, 0.10]),
    (5.0, [1.37, 1.05, 0.81, 0.63, 0.47, 0.34, 0.21, 0.10]),
])
@pytest.mark.parametrize('normalize', ['pixel', 'mask'])
def test_pat_check_values(tau, expected, normalize):
    # one pixel per image: mask normalisation divides by 1
    z, y = logits_for_probs(PROBS)
    loss = build(dict(type='PATLoss', tau=tau, normalize=normalize))
    values = loss(z, y, reduction_override='none').view(-1)
    assert [round(v, 2) for v in values.tolist()] == expected


# ---------------------------------------------------- CE equivalences
CE_EQUIVALENT = {
    'focal_gamma0': dict(type='SoftmaxFocalLoss', gamma=0.0),
    'cbfocal_gamma0_beta0': dict(
        type='ClassBalancedLoss',
        class_counts=COUNTS,
        beta=0.0,
        base='focal',
        gamma=0.0),
    'cb_beta0': dict(type='ClassBalancedLoss', class_counts=COUNTS, beta=0.0),
    'bms_tau0': dict(type='BalancedSoftmaxLoss', class_counts=COUNTS,
                     tau=0.0),
    'ldam_no_margin': dict(type='LDAMLoss', class_counts=COUNTS, max_m=0.0,
                           s=1.0),
    'blv_sigma0': dict(type='BLVLoss', class_counts=COUNTS, sigma=0.0),
}


@pytest.mark.parametrize('name', sorted(CE_EQUIVALENT))
@pytest.mark.parametrize('avg_non_ignore', [False, True])
@pytest.mark.parametrize('class_weight', [None, [1.0, 2.0, 0.5, 3.0, 1.5]])
def test_equals_mmseg_cross_entropy(name, avg_non_ignore, class_weight):
    from mmseg.models.losses import CrossEntropyLoss
    # with class_weight, mmseg 1.2.2 indexes it with every label, the
    # ignored one included (IndexError for 255); ignore_index=-1 indexes the
    # last class instead, which avg_non_ignore=True then zeroes. Without
    # avg_non_ignore compare on fully labelled maps.
    ignore_index = 255 if class_weight is None else -1
    ignore_frac = 0.0 if class_weight and not avg_non_ignore else 0.2
    z, y = make_batch(dtype=torch.float32, ignore_frac=ignore_frac,
                      ignore_index=ignore_index)
    ce = CrossEntropyLoss(
        class_weight=class_weight, avg_non_ignore=avg_non_ignore)
    ours = build(
        CE_EQUIVALENT[name],
        class_weight=class_weight,
        avg_non_ignore=avg_non_ignore)
    for reduction in ('mean', 'sum', 'none'):
        za = z.clone().requires_grad_()
        zb = z.clone().requires_grad_()
        a = ce(za, y, ignore_index=ignore_index,
               reduction_override=reduction)
        b = ours(zb, y, ignore_index=ignore_index,
                 reduction_override=reduction)
        assert torch.equal(a, b), (name, reduction)
        a.sum().backward()
        b.sum().backward()
        assert torch.equal(za.grad, zb.grad), (name, reduction)
    # sample weights and avg_factor follow mmseg too
    w = torch.rand(y.shape, generator=torch.Generator().manual_seed(1))
    a = ce(z, y, weight=w, avg_factor=17, ignore_index=ignore_index)
    b = ours(z, y, weight=w, avg_factor=17, ignore_index=ignore_index)
    assert torch.equal(a, b)
    a = ce(z, y, weight=w, ignore_index=ignore_index)
    b = ours(z, y, weight=w, ignore_index=ignore_index)
    assert torch.equal(a, b)


# ------------------------------------------------- values vs references
@pytest.mark.parametrize('avg_non_ignore', [False, True])
def test_values_match_reference(case, avg_non_ignore):
    name, cfg = case
    z, y = make_batch(dtype=torch.float64)
    loss = build(cfg, avg_non_ignore=avg_non_ignore)
    noise = None
    if name.startswith('blv'):
        noise = draw_blv_noise(loss, z, seed=3)
        torch.manual_seed(3)
    got = loss(z, y)
    pix = ref_pixel_loss(cfg, z, y, noise=noise)
    want = ref_reduce(cfg, pix, y, avg_non_ignore=avg_non_ignore)
    # per-class constants are float32 buffers: ~1e-7 relative
    torch.testing.assert_close(got, want.to(got.dtype), rtol=1e-6, atol=0)


def test_ldam_margins():
    loss = build(dict(type='LDAMLoss', class_counts=COUNTS, max_m=0.7))
    want = ref_ldam_margins(COUNTS, 0.7)
    np.testing.assert_allclose(loss.margins.numpy(), want, rtol=1e-6)
    # K / n^(1/4) with the largest margin on the rarest class
    assert loss.margins.max().item() == pytest.approx(0.7)
    n = np.maximum(np.array(COUNTS), 1)
    k = (loss.margins.numpy() * n**0.25)
    np.testing.assert_allclose(k, k[0], rtol=1e-6)


def test_cb_weights_effective_number():
    loss = build(dict(type='ClassBalancedLoss', class_counts=COUNTS,
                      beta=0.999))
    w = loss.cb_weights.double().numpy()
    np.testing.assert_allclose(w, ref_cb_weights(COUNTS, 0.999), rtol=1e-6)
    assert w.sum() == pytest.approx(NUM_CLASSES)
    assert np.all(np.diff(w) >= 0)  # rarer class, larger weight


def test_cb_warns_when_near_uniform():
    pixel_counts = [8.0e8, 3.0e7, 2.0e6, 5.0e5]
    with pytest.warns(UserWarning, match=r'beta=0\.9999.*almost uniform') \
            as record:
        build(dict(type='ClassBalancedLoss', class_counts=pixel_counts))
    message = str(record[0].message)
    assert "count_type='image'" in message and 'use beta=' in message
    # the suggested beta does separate the classes
    suggested = float(message.split('use beta=')[1].split()[0])
    w = ref_cb_weights(pixel_counts, suggested)
    assert max(w) / min(w) > 10
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        build(dict(type='ClassBalancedLoss', class_counts=pixel_counts,
                   beta=suggested))
        build(dict(type='ClassBalancedLoss', class_counts=COUNTS,
                   beta=0.999))


def test_cb_beta_median():
    pixel_counts = [8.0e8, 3.0e7, 2.0e6, 5.0e5]
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # separates: no near-uniform warning
        loss = build(dict(type='ClassBalancedLoss', class_counts=pixel_counts,
                          beta='median'))
    # 1 - 1/median: the median of the four counts is (3e7 + 2e6) / 2
    assert loss.beta == pytest.approx(1 - 1 / 1.6e7, abs=1e-15)
    np.testing.assert_allclose(
        loss.cb_weights.double().numpy(),
        ref_cb_weights(pixel_counts, 1 - 1 / 1.6e7), rtol=1e-6)
    ldam = build(dict(type='LDAMLoss', class_counts=pixel_counts,
                      drw_start_iter=0, drw_beta='median'))
    torch.testing.assert_close(ldam.drw_weights, loss.cb_weights)


def test_ldam_drw_follows_message_hub(_drw_iteration):
    hub = _drw_iteration
    cfg = dict(type='LDAMLoss', class_counts=COUNTS, s=2.0,
               drw_start_iter=5, drw_beta=0.999)
    loss = build(cfg)
    z, y = make_batch(dtype=torch.float64)
    values = {}
    for it in [0, 4, 5, 9, None]:
        hub.update_info('iter', it)
        active = it is not None and it >= 5
        assert loss.drw_active() == active
        want = ref_reduce(cfg, ref_pixel_loss(cfg, z, y), y)
        torch.testing.assert_close(loss(z, y), want)
        values.setdefault(active, want)
    assert not torch.allclose(values[True], values[False])
    # --resume: the runner loads the saved hub state, then RuntimeInfoHook
    # sets 'iter' to the resumed iteration
    hub.load_state_dict(dict(log_scalars={}, runtime_info=dict(iter=7),
                             resumed_keys={}))
    assert loss.drw_active()
    torch.testing.assert_close(loss(z, y), values[True])


def _blv_scale():
    n = np.maximum(np.array(COUNTS), 1)
    f = np.log(n.sum()) - np.log(n)
    return f / f.max()


def _gauss_abs_clamped_mean(sigma):
    """E|clamp(X, -1, 1)|, X ~ N(0, sigma): int_0^1 P(|X| > t) dt."""
    ts = np.linspace(0, 1, 200001)
    tail = 1 - np.array([math.erf(t / (sigma * math.sqrt(2))) for t in ts])
    return float(np.sum((tail[1:] + tail[:-1]) / 2 * np.diff(ts)))


def test_blv_zero_variation_and_mean_offset():
    loss = build(dict(type='BLVLoss', class_counts=COUNTS, sigma=4.0))
    r = _blv_scale()
    np.testing.assert_allclose(loss.variation_scale.numpy(), r, rtol=1e-6)
    e_abs = _gauss_abs_clamped_mean(4.0)
    torch.manual_seed(0)
    z = torch.randn(4, NUM_CLASSES, 128, 128)
    offset = loss.perturbed_logits(z) - z
    assert offset.dtype == z.dtype and offset.device == z.device
    assert (offset >= -1e-6).all()
    per_class = offset.mean((0, 2, 3)).numpy()
    # 65536 draws per class: standard error of the mean < 0.002
    np.testing.assert_allclose(per_class, e_abs * r, atol=0.006)
    # paper mode: zero mean, same spread; uniform: E|U(0, 1)| = 1/2
    paper = build(dict(type='BLVLoss', class_counts=COUNTS, mode='paper'))
    off = paper.perturbed_logits(z) - z
    np.testing.assert_allclose(off.mean((0, 2, 3)).numpy(), 0, atol=0.006)
    np.testing.assert_allclose(off.abs().mean((0, 2, 3)).numpy(),
                               e_abs * r, atol=0.006)
    uni = build(dict(type='BLVLoss', class_counts=COUNTS, sigma=1.0,
                     distribution='uniform'))
    off = uni.perturbed_logits(z) - z
    np.testing.assert_allclose(off.mean((0, 2, 3)).numpy(), 0.5 * r,
                               atol=0.006)
    assert off.max() <= 1.0 + 1e-6


@pytest.mark.parametrize('mode', ['official', 'paper'])
def test_blv_noise_law(mode):
    """The offsets of the rarest class (r = 1) follow the clamped normal:
    P(v = +-1) and quantiles of |v| from erf, per method definition."""
    sigma = 4.0
    loss = build(dict(type='BLVLoss', class_counts=COUNTS, sigma=sigma,
                      mode=mode))
    torch.manual_seed(1)
    v = loss.draw_variation(torch.zeros(2, NUM_CLASSES, 256, 512,
                                        dtype=torch.float64))
    v = v[:, NUM_CLASSES - 1].reshape(-1)  # zero count: r = 1
    assert float(_blv_scale()[-1]) == 1.0
    n = v.numel()
    p_clamped = 1 - math.erf(1 / (sigma * math.sqrt(2)))
    tol = 4 * math.sqrt(p_clamped * (1 - p_clamped) / n)
    assert abs((v.abs() == 1).double().mean().item() - p_clamped) < tol
    if mode == 'official':
        assert (v >= 0).all()
    else:
        assert abs((v == 1).double().mean().item() - p_clamped / 2) < tol
        assert abs((v == -1).double().mean().item() - p_clamped / 2) < tol
    for t in (0.1, 0.3, 0.6, 0.9):
        p = math.erf(t / (sigma * math.sqrt(2)))  # P(|v| <= t)
        got = (v.abs() <= t).double().mean().item()
        assert abs(got - p) < 4 * math.sqrt(p * (1 - p) / n), t


def test_blv_reproducible_and_fresh():
    loss = build(dict(type='BLVLoss', class_counts=COUNTS))
    z, y = make_batch()
    torch.manual_seed(5)
    a = loss(z, y)
    b = loss(z, y)
    torch.manual_seed(5)
    assert torch.equal(loss(z, y), a)
    assert not torch.equal(a, b)  # fresh noise at every call
    zd = z.double()
    assert loss.draw_variation(zd).dtype == torch.float64
    # a large draw (threaded blocks on CPU) does not depend on the number
    # of threads
    big = torch.zeros(2, NUM_CLASSES, 128, 256)
    draws = []
    for threads in (1, 2, 4):
        torch.set_num_threads(threads)
        torch.manual_seed(9)
        draws.append(loss.draw_variation(big))
    torch.set_num_threads(1)
    assert torch.equal(draws[0], draws[1]) and torch.equal(draws[0],
                                                           draws[2])
    assert draws[0].std() > 0


def test_pat_mask_normalisation_vs_loop():
    cfg = CASES['pat']
    # very unequal masks: class 0 large, class 3 a few pixels
    z, y = make_batch(n=3, h=9, w=8, seed=4, dtype=torch.float64)
    y[0] = 0
    y[0, :2, :2] = 3
    y[1, :, :4] = 255
    loss = build(cfg, class_weight=[1.0, 2.0, 1.0, 0.5, 1.0])
    pix = ref_pixel_loss(dict(cfg, class_weight=[1.0, 2.0, 1.0, 0.5, 1.0]),
                         z, y)
    want = ref_pat_mask_mean(pix, y, NUM_CLASSES, [1.0, 2.0, 1.0, 0.5, 1.0])
    torch.testing.assert_close(loss(z, y), want)
    # 'none' gives loss / mask size per pixel; its sum is the 'sum' value
    none = loss(z, y, reduction_override='none')
    total = loss(z, y, reduction_override='sum')
    torch.testing.assert_close(none.sum(), total)
    sizes = torch.zeros_like(pix)
    for n in range(y.shape[0]):
        for c in range(NUM_CLASSES):
            sizes[n][y[n] == c] = (y[n] == c).sum().double()
    torch.testing.assert_close(none, torch.where(y != 255, pix / sizes, 0))
    # mask vs pixel normalisation differ when masks are unequal
    pixel = build(cfg, normalize='pixel', avg_non_ignore=True)
    assert not torch.allclose(pixel(z, y), loss(z, y))


@pytest.mark.parametrize('tau', [2.0, 5.0])
def test_pat_detach_weight(tau):
    z, y = make_batch(dtype=torch.float64, ignore_frac=0.0)
    grads = {}
    for detach in (False, True):
        zz = z.clone().requires_grad_()
        loss = build(dict(type='PATLoss', tau=tau, normalize='pixel',
                          detach_weight=detach, avg_non_ignore=True))
        loss(zz, y).backward()
        grads[detach] = zz.grad
    # analytic: d/dz of beta*ce, with or without beta's own derivative
    p = torch.softmax(z, 1)
    onehot = torch.nn.functional.one_hot(y, NUM_CLASSES).permute(0, 3, 1, 2)
    py = (p * onehot).sum(1, keepdim=True)
    ce = -torch.log(py)
    beta = torch.exp((py - 1) / tau)
    dce = p - onehot  # d ce / dz
    dpy = py * (onehot - p)  # d p_y / dz
    m = y.numel()
    detached = beta * dce / m
    full = (beta * dce + ce * beta / tau * dpy) / m
    torch.testing.assert_close(grads[True], detached)
    torch.testing.assert_close(grads[False], full)
    assert not torch.allclose(grads[True], grads[False])
