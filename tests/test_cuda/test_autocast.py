"""Every loss (and CeCo's term) under CUDA autocast in float16 and
bfloat16: finite loss and gradients at logits of +-1e4, and values within a
stated tolerance of float32.

LongTailLoss casts half-precision logits to float32 (as autocast does for
cross-entropy); autocast may still run a loss's matmuls in half precision.
Tolerance against float32, per dtype: ``rtol=5e-3, atol=5e-4`` (float16)
and ``rtol=3e-2, atol=3e-3`` (bfloat16, 8-bit mantissa), for

* logits of +-1e4 (representable in both half types), against float32 on
  the same (rounded) logits;
* the logits of a 1x1 convolution run under autocast, against the float32
  convolution's.
"""
import pytest
import torch
from loss_cases import NUM_CLASSES, build, make_batch

from tests.test_cuda.test_losses import CONFIGS

pytestmark = pytest.mark.cuda

DTYPES = {'fp16': torch.float16, 'bf16': torch.bfloat16}
TOL = {torch.float16: dict(rtol=5e-3, atol=5e-4),
       torch.bfloat16: dict(rtol=3e-2, atol=3e-3)}


def run(loss, z, y, seed=0, **kwargs):
    torch.manual_seed(seed)  # the same BLV draw for both precisions
    return loss(z, y, **kwargs)


@pytest.mark.parametrize('dtype', sorted(DTYPES))
@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_extreme_logits_finite_and_close_to_float32(name, dtype, device):
    dtype = DTYPES[dtype]
    z, y = make_batch(n=2, h=16, w=24, seed=3)
    z = torch.where(z > 0, 1e4, -1e4).to(device)
    y = y.to(device)
    loss = build(CONFIGS[name]).to(device)
    half = z.to(dtype).requires_grad_()
    with torch.autocast('cuda', dtype=dtype):
        out = run(loss, half, y)
    out.backward()
    assert torch.isfinite(out), out
    assert half.grad is not None and torch.isfinite(half.grad).all()
    ref = run(loss, half.detach().float(), y)  # the same values in fp32
    torch.testing.assert_close(out.float(), ref, **TOL[dtype])


@pytest.mark.parametrize('dtype', sorted(DTYPES))
@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_autocast_conv_logits_close_to_float32(name, dtype, device):
    dtype = DTYPES[dtype]
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, NUM_CLASSES, 1).to(device)
    x = torch.randn(2, 3, 16, 24, device=device)
    _, y = make_batch(n=2, h=16, w=24)
    y = y.to(device)
    loss = build(CONFIGS[name]).to(device)
    ref = run(loss, conv(x), y)
    with torch.autocast('cuda', dtype=dtype):
        logits = conv(x)
        assert logits.dtype == dtype
        out = run(loss, logits, y)
    assert torch.isfinite(out)
    torch.testing.assert_close(out.float(), ref, **TOL[dtype])
    out.backward()
    for p in conv.parameters():
        assert torch.isfinite(p.grad).all()


@pytest.mark.parametrize('dtype', sorted(DTYPES))
def test_ceco_term_under_autocast(dtype, device):
    from mmseg_longtail.models.decode_heads import CeCoBranch
    dtype = DTYPES[dtype]
    torch.manual_seed(0)
    branch = CeCoBranch(6, NUM_CLASSES, class_counts=[50, 20, 5, 3, 0],
                        channels=8).train().to(device)
    feat = torch.randn(2, 6, 8, 12, device=device)
    _, labels = make_batch(n=2, h=16, w=24, seed=6)
    labels = labels.to(device)
    ref = branch(feat, labels)
    for scale in (1.0, 1e4):  # ordinary and extreme features
        f = (feat * scale).to(dtype).requires_grad_()
        with torch.autocast('cuda', dtype=dtype):
            out = branch(f, labels)
        out.backward()
        assert torch.isfinite(out) and torch.isfinite(f.grad).all()
        if scale == 1.0:
            torch.testing.assert_close(out.float(), ref, **TOL[dtype])
