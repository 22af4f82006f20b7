"""What UNetPlusPlusHead and AttentionUNetHead share: any input size, every
level used, every parameter trained, norms, losses, argument checks."""
import pytest
import torch

import mmseg_longtail  # noqa: F401  (registers the heads)
from .head_test_utils import (IN_CHANNELS, build_head, make_levels,
                              make_samples, mmseg_ce, params_without_grad,
                              random_labels, total_loss)

HEADS = ['UNetPlusPlusHead', 'AttentionUNetHead']


@pytest.mark.parametrize('head_type', HEADS)
@pytest.mark.parametrize('size', [(32, 32), (33, 47), (17, 29), (8, 8)])
@pytest.mark.parametrize('align_corners', [False, True])
def test_output_shape_any_size(head_type, size, align_corners):
    head = build_head(head_type, align_corners=align_corners).eval()
    levels = make_levels(2, IN_CHANNELS, size)
    assert head(levels).shape == (2, 3, *size)
    assert head._forward_feature(levels).shape == (2, 4, *size)


@pytest.mark.parametrize('head_type', HEADS)
def test_every_level_is_used(head_type):
    head = build_head(head_type).eval()
    levels = make_levels(1, IN_CHANNELS, (16, 16))
    ref = head(levels)
    for i in range(len(levels)):
        moved = [x.clone() for x in levels]
        moved[i] += 1.0
        assert not torch.allclose(head(moved), ref), f'level {i} unused'


@pytest.mark.parametrize('head_type', HEADS)
@pytest.mark.parametrize('norm_cfg', [
    dict(type='BN'),
    dict(type='SyncBN'),
    dict(type='GN', num_groups=2),
    None,
])
def test_backward_reaches_every_parameter(head_type, norm_cfg):
    extra = dict(deep_supervision=True) if head_type == HEADS[0] else {}
    head = build_head(head_type, norm_cfg=norm_cfg, **extra).train()
    labels = random_labels(2, (20, 28), 3)
    losses = head.loss(make_levels(2, IN_CHANNELS, (20, 28)),
                       make_samples(labels), dict())
    assert torch.isfinite(total_loss(losses))
    total_loss(losses).backward()
    assert params_without_grad(head) == []


@pytest.mark.parametrize('head_type', HEADS)
def test_loss_matches_independent_ce(head_type):
    head = build_head(head_type).train()
    levels = make_levels(2, IN_CHANNELS, (16, 24))
    labels = random_labels(2, (16, 24), 3)
    losses = head.loss(levels, make_samples(labels), dict())
    assert set(losses) == {'loss_ce', 'acc_seg'}
    expect = mmseg_ce(head.conv_seg(head._forward_feature(levels)), labels)
    torch.testing.assert_close(losses['loss_ce'], expect)


@pytest.mark.parametrize('head_type', HEADS)
def test_any_loss_in_loss_decode(head_type):
    head = build_head(head_type, loss_decode=[
        dict(type='CrossEntropyLoss', loss_name='loss_ce', loss_weight=1.0),
        dict(type='DiceLoss', loss_name='loss_dice', loss_weight=0.5)
    ])
    losses = head.loss(make_levels(2, IN_CHANNELS, (16, 16)),
                       make_samples(random_labels(2, (16, 16), 3)), dict())
    assert {'loss_ce', 'loss_dice'} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())


@pytest.mark.parametrize('head_type', HEADS)
def test_in_index_selects_levels(head_type):
    head = build_head(head_type, in_channels=[8, 32], in_index=[1, 3])
    levels = make_levels(1, IN_CHANNELS, (16, 16))
    assert head.eval()(levels).shape == (1, 3, 8, 8)


@pytest.mark.parametrize('head_type', HEADS)
def test_wrong_level_order_is_reported(head_type):
    head = build_head(head_type, in_channels=IN_CHANNELS[::-1]).eval()
    levels = make_levels(1, IN_CHANNELS, (16, 16))[::-1]
    with pytest.raises(ValueError, match='fine to coarse'):
        head(levels)


@pytest.mark.parametrize('head_type', HEADS)
@pytest.mark.parametrize('kwargs, match', [
    (dict(decoder_channels=[4, 8]), 'decoder_channels needs 3'),
    (dict(decoder_channels=[4, 8, 16, 32]), 'decoder_channels needs 3'),
    (dict(decoder_channels=[8, 8, 8]), 'must equal channels=4'),
    (dict(input_transform='resize_concat'), 'input_transform'),
    (dict(in_index=[0, 1, 2]), 'in_index has 3'),
    (dict(in_channels=4, in_index=0), 'in_channels must be a list'),
    (dict(in_channels=[4], in_index=[0]), 'at least 2 levels'),
    (dict(num_convs=0), 'num_convs'),
])
def test_bad_arguments(head_type, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        build_head(head_type, **kwargs)


def gn(groups):
    return dict(type='GN', num_groups=groups)


PAPER_WIDTHS = dict(in_channels=[32, 64, 128, 256, 512],
                    in_index=[0, 1, 2, 3, 4], channels=32)


@pytest.mark.parametrize('head_type, kwargs, match', [
    # attunet.py's widths with GN(32): the first gate has 16 channels
    ('AttentionUNetHead', dict(norm_cfg=gn(32), **PAPER_WIDTHS),
     r'16 channels of attention_channels\[0\] .*change attention_channels '
     r'\(default in_channels\[i\] // 2: set it explicitly\) or '
     r'norm_cfg\.num_groups'),
    ('AttentionUNetHead', dict(norm_cfg=gn(2), attention_channels=[2, 3, 4]),
     r'3 channels of attention_channels\[1\]'),
    ('UNetPlusPlusHead', dict(norm_cfg=gn(3)),
     r'4 channels of decoder_channels\[0\] .*change channels '
     r'\(= decoder_channels\[0\]\) or norm_cfg\.num_groups'),
    ('UNetPlusPlusHead', dict(norm_cfg=gn(4), decoder_channels=[4, 6, 16]),
     r'6 channels of decoder_channels\[1\] .*change decoder_channels or'),
    ('AttentionUNetHead', dict(
        norm_cfg=gn(4), in_channels=[6, 8, 16, 32], attention_channels=[
            4, 4, 8], gate_cfg=dict(with_output_transform=True)),
     r'6 channels of in_channels\[0\] \(the output transform W\).*'
     r'gate_cfg\.with_output_transform=False or norm_cfg\.num_groups'),
    ('AttentionUNetHead', dict(norm_cfg=gn(2),
                               gate_cfg=dict(with_psi_norm=True)),
     r"1 channels of the gates' psi .*gate_cfg\.with_psi_norm=False"),
    ('AttentionUNetHead', dict(norm_cfg=dict(type='GN')),
     r"norm_cfg=\{'type': 'GN'\} cannot normalise .*AssertionError"),
])
def test_norm_incompatible_with_a_width_names_the_field(head_type, kwargs,
                                                        match):
    with pytest.raises(ValueError, match=match):
        build_head(head_type, **kwargs)


@pytest.mark.parametrize('head_type, kwargs', [
    # the gating-grid gate has no norm in theta / phi: F_int is free
    ('AttentionUNetHead', dict(norm_cfg=gn(4), attention_channels=[2, 3, 5],
                               gate_cfg=dict(mode='gating'))),
    ('AttentionUNetHead', dict(norm_cfg=gn(16), attention_channels=[
        16, 16, 16], decoder_channels=[16, 32, 32], channels=16)),
    ('UNetPlusPlusHead', dict(norm_cfg=gn(4))),
])
def test_compatible_norms_build(head_type, kwargs):
    head = build_head(head_type, **kwargs).eval()
    out = head(make_levels(1, IN_CHANNELS, (16, 16)))
    assert out.shape == (1, 3, 16, 16)
