import pytest
import torch
from mmengine.registry import init_default_scope
from mmseg.models.backbones import UNet
from mmseg.registry import MODELS

import mmseg_longtail  # noqa: F401  (registers UNetEncoder)

# as the runner does (default_scope='mmseg'): mmcv builds mmseg's
# InterpConv upsampler of UNet from the default scope
init_default_scope('mmseg')

CFG = dict(type='UNetEncoder', base_channels=4, num_stages=4,
           strides=(1, 1, 1, 1), enc_num_convs=(2, 2, 2, 2),
           downsamples=(True, True, True), enc_dilations=(1, 1, 1, 1))


@pytest.mark.parametrize('size', [(32, 32), (33, 47), (9, 17)])
def test_levels_and_strides(size):
    torch.manual_seed(0)
    enc = MODELS.build(CFG).eval()
    outs = enc(torch.randn(2, 3, *size))
    h, w = size
    expected = []
    for i in range(4):
        expected.append((2, 4 * 2**i, h, w))
        h, w = h // 2, w // 2  # max-pooling floors odd sizes
    assert [tuple(o.shape) for o in outs] == expected
    assert enc.out_channels == (4, 8, 16, 32)
    assert not hasattr(enc, 'decoder')


def test_same_encoder_as_mmseg_unet():
    """The encoder of an mmseg UNet checkpoint loads and computes the same
    features (compared with UNet's own encoder stages)."""
    torch.manual_seed(0)
    unet = UNet(base_channels=4, num_stages=4, strides=(1, 1, 1, 1),
                enc_num_convs=(2, 2, 2, 2), dec_num_convs=(2, 2, 2),
                downsamples=(True, True, True), enc_dilations=(1, 1, 1, 1),
                dec_dilations=(1, 1, 1))
    unet.eval()  # mmseg's UNet.train returns None: no chaining
    unet.init_weights()
    enc = MODELS.build(CFG).eval()
    encoder_state = {k: v for k, v in unet.state_dict().items()
                     if k.startswith('encoder.')}
    assert set(enc.state_dict()) == set(encoder_state)
    enc.load_state_dict(encoder_state, strict=True)
    x = torch.randn(1, 3, 32, 32)
    ref = []
    y = x
    for stage in unet.encoder:
        y = stage(y)
        ref.append(y)
    for a, b in zip(enc(x), ref):
        assert torch.equal(a, b)


def test_out_indices_and_strided_stage():
    enc = MODELS.build(dict(CFG, out_indices=(1, 3), strides=(1, 2, 1, 1),
                            downsamples=(False, True, True)))
    outs = enc(torch.randn(1, 3, 32, 32))
    assert [tuple(o.shape) for o in outs] == [(1, 8, 16, 16), (1, 32, 4, 4)]
    assert enc.out_channels == (8, 32)


def test_norm_eval_and_gradients():
    enc = MODELS.build(dict(CFG, norm_eval=True))
    enc.train()
    bns = [m for m in enc.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and not any(m.training for m in bns)
    enc = MODELS.build(CFG).train()
    sum(o.mean() for o in enc(torch.randn(2, 3, 16, 16))).backward()
    assert all(p.grad is not None for p in enc.parameters())


@pytest.mark.parametrize('out_indices', [(), (0, 4), (-1, )])
def test_bad_out_indices(out_indices):
    with pytest.raises(ValueError, match='out_indices'):
        MODELS.build(dict(CFG, out_indices=out_indices))
