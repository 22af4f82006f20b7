import pytest
import torch
import torch.nn.functional as F

import mmseg_longtail  # noqa: F401  (registers the heads)
from mmseg_longtail.models.decode_heads import AttentionGate
from .head_test_utils import (IN_CHANNELS, build_head, make_levels,
                              make_samples, params_without_grad,
                              random_labels, total_loss)


def build(**kwargs):
    return build_head('AttentionUNetHead', **kwargs)


def test_gate_matches_paper_formula():
    # mode='skip' (the default), no norm: Oktay et al.'s Eq. 1-2 with alpha
    # on the skip's grid
    torch.manual_seed(1)
    gate = AttentionGate(6, 10, 5, norm_cfg=None).eval()
    x = torch.randn(2, 6, 9, 11)
    g = torch.randn(2, 10, 5, 6)
    # independent: the additive attention of Oktay et al. (Eq. 1-2)
    wx, bx = gate.theta.conv.weight, gate.theta.conv.bias
    wg, bg = gate.phi.conv.weight, gate.phi.conv.bias
    g_up = F.interpolate(g, size=(9, 11), mode='bilinear',
                         align_corners=False)
    q = F.relu(F.conv2d(x, wx, bx) + F.conv2d(g_up, wg, bg))
    alpha = torch.sigmoid(F.conv2d(q, gate.psi.weight, gate.psi.bias))
    torch.testing.assert_close(gate.coefficients(x, g), alpha)
    torch.testing.assert_close(gate(x, g), x * alpha)
    assert alpha.shape == (2, 1, 9, 11)
    assert ((alpha > 0) & (alpha < 1)).all()


def test_closed_gates_cut_the_skips():
    head = build().eval()
    levels = make_levels(1, IN_CHANNELS, (16, 16))
    for gate in head.gates:
        torch.nn.init.zeros_(gate.psi.weight)
        torch.nn.init.constant_(gate.psi.bias, -1e4)  # alpha = 0 exactly
    ref = head(levels)
    moved = [x.clone() for x in levels]
    moved[0] += 5.0  # the finest skip only reaches d0 through its gate
    torch.testing.assert_close(head(moved), ref)
    for gate in head.gates:
        torch.nn.init.constant_(gate.psi.bias, 0.0)  # alpha = 0.5
    assert not torch.allclose(head(moved), head(levels))


def test_channels_wiring():
    head = build(attention_channels=[2, 3, 4])
    assert head.decoder_channels == [4, 8, 16]
    # block i: [gated x_i, Up(d_{i+1})] -> decoder_channels[i]
    below = [8, 16, 32]
    for i, block in enumerate(head.blocks):
        assert block.convs[0].conv.in_channels == IN_CHANNELS[i] + below[i]
        assert block.convs[-1].conv.out_channels == head.decoder_channels[i]
    for i, gate in enumerate(head.gates):
        assert gate.theta.conv.out_channels == [2, 3, 4][i]
        assert gate.phi.conv.in_channels == below[i]


@pytest.mark.parametrize('attention_channels', [[2, 2], [2, 0, 2]])
def test_bad_attention_channels(attention_channels):
    with pytest.raises(ValueError, match='attention_channels needs 3'):
        build(attention_channels=attention_channels)


def bn(x, norm, training):
    """``norm`` (a BatchNorm2d) applied functionally: batch statistics in
    training mode, running ones in eval mode."""
    return F.batch_norm(x, norm.running_mean, norm.running_var, norm.weight,
                        norm.bias, training=training, eps=norm.eps)


def conv_bn(x, module, training, **kwargs):
    """A ConvModule (conv + BN, no activation) applied functionally."""
    return bn(F.conv2d(x, module.conv.weight, module.conv.bias, **kwargs),
              module.bn, training)


@pytest.mark.parametrize('training, commutes', [(False, True),
                                                (True, False)])
def test_skip_gate_resize_commutes_only_with_a_fixed_norm(training,
                                                          commutes):
    # mode='skip' applies W_g (1x1 conv + BN) before resizing g. Resizing
    # g first would give the same alpha with BN in eval mode (a fixed
    # per-channel affine map), not in training mode (batch statistics of
    # the coarse map vs the resized one).
    torch.manual_seed(2)
    gate = AttentionGate(6, 10, 5, norm_cfg=dict(type='BN'))
    for norm in (gate.theta.bn, gate.phi.bn):
        norm.running_mean.uniform_(-1, 1)
        norm.running_var.uniform_(0.5, 2)
    gate.train(training)
    x = torch.randn(2, 6, 9, 11)
    g = torch.randn(2, 10, 5, 6) * 3 + 1
    g_up = F.interpolate(g, size=(9, 11), mode='bilinear',
                         align_corners=False)
    q = F.relu(conv_bn(x, gate.theta, training) +
               conv_bn(g_up, gate.phi, training))
    resized_first = torch.sigmoid(
        F.conv2d(q, gate.psi.weight, gate.psi.bias))
    alpha = gate.coefficients(x, g)
    if commutes:
        torch.testing.assert_close(alpha, resized_first)
    else:
        assert (alpha - resized_first).abs().max() > 1e-3


@pytest.mark.parametrize('size_x, size_g', [((10, 12), (5, 6)),
                                            ((9, 11), (5, 6))])
def test_gating_mode_matches_oktay_code(size_x, size_g):
    # mode='gating' + W: Oktay et al.'s _GridAttentionBlockND
    # ('concatenation'): strided theta to the gating grid, phi(g) resized
    # there, alpha resampled to x, W = 1x1 conv + BN on alpha * x
    torch.manual_seed(3)
    gate = AttentionGate(6, 10, 5, mode='gating', with_output_transform=True,
                         norm_cfg=dict(type='BN')).train()
    theta, phi = gate.theta.conv, gate.phi.conv
    assert theta.kernel_size == theta.stride == (2, 2)
    assert theta.bias is None and phi.bias is not None
    assert not gate.theta.with_norm and not gate.phi.with_norm
    x = torch.randn(2, 6, *size_x)
    g = torch.randn(2, 10, *size_g)
    # independent re-computation with the module's weights
    theta_x = F.conv2d(x, theta.weight, stride=2)
    phi_g = F.interpolate(F.conv2d(g, phi.weight, phi.bias),
                          size=theta_x.shape[2:], mode='bilinear',
                          align_corners=False)
    coarse = torch.sigmoid(
        F.conv2d(F.relu(theta_x + phi_g), gate.psi.weight, gate.psi.bias))
    alpha = F.interpolate(coarse, size=size_x, mode='bilinear',
                          align_corners=False)
    expected = conv_bn(alpha * x, gate.out_transform, training=True)
    torch.testing.assert_close(gate.coefficients(x, g), alpha)
    torch.testing.assert_close(gate(x, g), expected)
    assert coarse.shape[2:] == (size_x[0] // 2, size_x[1] // 2)


def test_up_conv_decoder_matches_attu_net():
    # up_conv=True + with_psi_norm: the AttU_Net layout
    # (LeeJunHyun/Image_Segmentation): u = ReLU(BN(conv3x3(Up(d)))),
    # alpha = sigmoid(BN(psi(ReLU(BN(W_g u) + BN(W_x x))))),
    # d' = block([alpha * x, u]); BN in training mode throughout
    head = build(up_conv=True, gate_cfg=dict(with_psi_norm=True)).train()
    levels = make_levels(2, IN_CHANNELS, (12, 20))
    d = levels[-1]
    for i in reversed(range(3)):
        x = levels[i]
        up, gate = head.up_convs[i], head.gates[i]
        assert up.conv.in_channels == [8, 16, 32][i]
        assert gate.phi.conv.in_channels == head.decoder_channels[i]
        assert gate.psi.bias is None  # cancelled by the BN after it
        u = F.interpolate(d, size=x.shape[2:], mode='bilinear',
                          align_corners=False)
        u = F.relu(conv_bn(u, up, True, padding=1))
        q = F.relu(conv_bn(u, gate.phi, True) + conv_bn(x, gate.theta, True))
        alpha = torch.sigmoid(bn(F.conv2d(q, gate.psi.weight), gate.psi_norm,
                                 True))
        d = head.blocks[i](torch.cat([alpha * x, u], dim=1))
    torch.testing.assert_close(head._forward_feature(levels), d)


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def test_variants_parameter_counts():
    # what each variant adds to the default head (C=3, BN)
    base = build()
    oktay = build(gate_cfg=dict(mode='gating', with_output_transform=True))
    attu = build(up_conv=True, gate_cfg=dict(with_psi_norm=True))
    # gating: theta 2x2 (4cf) instead of 1x1 + BN (cf + 2f), phi with a
    # bias instead of BN (-f), plus W (1x1 conv without bias + BN)
    inter, xs = [2, 4, 8], IN_CHANNELS[:3]
    delta = sum(3 * c * f - 2 * f - f + c * c + 2 * c
                for c, f in zip(xs, inter))
    assert n_params(oktay) - n_params(base) == delta
    # up_conv: conv3x3 (no bias) + BN from below[i] to decoder_channels[i];
    # phi and block take decoder_channels[i] instead of below[i]; psi
    # trades its bias for a BN (+1)
    below, dec = [8, 16, 32], [4, 8, 16]
    delta = sum(9 * b * w + 2 * w - (b - w) * f - 9 * (b - w) * w + 1
                for b, w, f in zip(below, dec, inter))
    assert n_params(attu) - n_params(base) == delta


@pytest.mark.parametrize('kwargs', [
    dict(gate_cfg=dict(mode='gating', with_output_transform=True)),
    dict(up_conv=True, gate_cfg=dict(with_psi_norm=True)),
])
@pytest.mark.parametrize('norm_cfg', [dict(type='BN'), None])
def test_variants_train_every_parameter(kwargs, norm_cfg):
    head = build(norm_cfg=norm_cfg, **kwargs).train()
    labels = random_labels(2, (17, 29), 3)
    losses = head.loss(make_levels(2, IN_CHANNELS, (17, 29)),
                       make_samples(labels), dict())
    total_loss(losses).backward()
    assert params_without_grad(head) == []
    assert head.eval()(make_levels(1, IN_CHANNELS, (8, 8))).shape == (
        1, 3, 8, 8)


@pytest.mark.parametrize('kwargs, error, match', [
    (dict(gate_cfg=dict(mode='coarse')), ValueError, 'gate_cfg.mode'),
    (dict(gate_cfg=dict(resample='gating')), ValueError,
     r"gate_cfg has unknown keys \['resample'\]"),
    (dict(gate_cfg=dict(mode='gating', sub_sample_factor=0)), ValueError,
     'gate_cfg.sub_sample_factor'),
    (dict(gate_cfg='gating'), TypeError, 'gate_cfg must be a dict'),
    (dict(up_conv=True, gate_cfg=dict(mode='gating')), ValueError,
     "use gate_cfg.mode='skip'"),
])
def test_bad_gate_cfg(kwargs, error, match):
    with pytest.raises(error, match=match):
        build(**kwargs)
