"""The fused cross-entropy of shifted logits (BalancedSoftmaxLoss,
BLVLoss): forward values bit for bit those of ``F.cross_entropy(z +
shift)``, gradients those of autograd through it, on the in-place path
(large inputs) and the fresh-tensor one (small inputs), with class
weights, any ignore_index, channels-last logits and float64."""
import pytest
import torch
import torch.nn.functional as F

from mmseg_longtail.models.losses.base import PixelTargets
from mmseg_longtail.models.losses.shifted_cross_entropy import (
    INPLACE_MIN_NUMEL, shifted_cross_entropy)

WEIGHT = [1.0, 2.0, 0.5, 3.0, 1.5]


def batch(n=2, c=5, h=6, w=7, ignore_index=255, seed=0,
          dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    z = (torch.randn(n, c, h, w, generator=g) * 3).to(dtype)
    y = torch.randint(0, c, (n, h, w), generator=g)
    y[torch.rand(n, h, w, generator=g) < 0.2] = ignore_index
    return z, y


def reference(z, y, shift, scale, weight, ignore_index):
    zz = z.clone().requires_grad_()
    shifted = zz + (shift if scale is None else shift * scale)
    loss = F.cross_entropy(shifted, y, weight=weight, reduction='none',
                           ignore_index=ignore_index)
    return loss, zz


def fused(z, y, shift, scale, weight, ignore_index):
    zz = z.clone().requires_grad_()
    target = PixelTargets(y, ignore_index, z.shape[1])
    loss = shifted_cross_entropy(zz, target, shift.clone(), scale, weight)
    return loss, zz


@pytest.mark.parametrize('size', ['small', 'large'])
@pytest.mark.parametrize('kind', ['constant', 'noise'])
@pytest.mark.parametrize('weighted', [False, True])
@pytest.mark.parametrize('ignore_index', [255, -1, 0])
def test_values_and_gradients_match_autograd(size, kind, weighted,
                                             ignore_index):
    h, w = (6, 7) if size == 'small' else (64, 128)
    z, y = batch(h=h, w=w, ignore_index=ignore_index)
    assert (z.numel() >= INPLACE_MIN_NUMEL) == (size == 'large')
    c = z.shape[1]
    if kind == 'constant':  # Balanced Softmax: tau * log(prior) per class
        shift, scale = torch.randn(c).view(1, -1, 1, 1), None
    else:  # BLV: a noise buffer of the logits' shape, scaled per class
        shift = torch.rand(z.shape, generator=torch.Generator().manual_seed(
            1))
        scale = torch.rand(c).view(1, -1, 1, 1)
    weight = torch.tensor(WEIGHT) if weighted else None
    want, z_ref = reference(z, y, shift, scale, weight, ignore_index)
    got, z_got = fused(z, y, shift, scale, weight, ignore_index)
    if kind == 'constant':
        assert torch.equal(got, want)  # the same kernels, bit for bit
    else:  # z + s * v in one addcmul against a product and a sum
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
    assert (got[y == ignore_index] == 0).all()
    cot = torch.rand(got.shape, generator=torch.Generator().manual_seed(2))
    (want * cot).sum().backward()
    (got * cot).sum().backward()
    # float rounding of gradients up to |w| = 3: a few ulp
    torch.testing.assert_close(z_got.grad, z_ref.grad, rtol=1e-5,
                               atol=1e-6)
    assert (z_got.grad.permute(0, 2, 3, 1)[y == ignore_index] == 0).all()


def test_channels_last_last_dim_and_float64():
    for z, y in (batch(h=1, w=1), batch(h=1, w=1, n=8),
                 batch(dtype=torch.float64)):
        shift = torch.randn(z.shape[1], dtype=z.dtype).view(1, -1, 1, 1)
        want, z_ref = reference(z, y, shift, None, None, 255)
        got, z_got = fused(z, y, shift, None, None, 255)
        assert torch.equal(got, want)
        want.sum().backward()
        got.sum().backward()
        torch.testing.assert_close(z_got.grad, z_ref.grad)
    z, y = batch(h=64, w=128)
    z = z.contiguous(memory_format=torch.channels_last)
    shift = torch.randn(z.shape[1]).view(1, -1, 1, 1)
    want, _ = reference(z, y, shift, None, None, 255)
    got, z_got = fused(z, y, shift, None, None, 255)
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_gradcheck_small_and_second_backward_large():
    z, y = batch(n=1, h=2, w=3, dtype=torch.float64)
    target = PixelTargets(y, 255, z.shape[1])
    shift = torch.randn(z.shape[1], dtype=torch.float64).view(1, -1, 1, 1)
    weight = torch.tensor(WEIGHT, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda x: shifted_cross_entropy(x, target, shift, None, weight),
        (z.clone().requires_grad_(), ))
    # large: the saved buffer becomes the gradient, so a second backward
    # through the same graph is refused with a message
    z, y = batch(h=64, w=128)
    loss, zz = fused(z, y, torch.zeros(1, 5, 1, 1), None, None, 255)
    loss.sum().backward(retain_graph=True)
    with pytest.raises(RuntimeError, match='back-propagated once'):
        loss.sum().backward()


def test_noise_buffer_shape_is_checked():
    z, y = batch()
    target = PixelTargets(y, 255, z.shape[1])
    with pytest.raises(ValueError, match='buffer of the logits'):
        shifted_cross_entropy(z, target, torch.zeros(1, 5, 1, 1),
                              scale=torch.ones(1, 5, 1, 1))
