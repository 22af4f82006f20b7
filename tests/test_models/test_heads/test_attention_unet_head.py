import pytest
import torch
import torch.nn.functional as F

import mmseg_longtail  # noqa: F401  (registers the heads)
from mmseg_longtail.models.decode_heads import AttentionGate
from .head_test_utils import IN_CHANNELS, build_head, make_levels


def build(**kwargs):
    return build_head('AttentionUNetHead', **kwargs)


def test_gate_matches_paper_formula():
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
