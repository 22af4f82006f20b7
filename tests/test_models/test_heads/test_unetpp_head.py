import pytest
import torch
import torch.nn.functional as F

import mmseg_longtail  # noqa: F401  (registers the heads)
from mmseg_longtail.models.decode_heads import merge_probabilities
from .head_test_utils import (IN_CHANNELS, build_head, make_levels,
                              make_samples, mmseg_ce, random_labels)


def build(**kwargs):
    return build_head('UNetPlusPlusHead', **kwargs)


def test_nested_grid_wiring():
    # X[i,j] sees X[i,0..j-1] and Up(X[i+1,j-1]); default widths 4*2**i.
    head = build()
    assert head.decoder_channels == [4, 8, 16]
    expected_in = {
        '0_1': 4 + 8, '1_1': 8 + 16, '2_1': 16 + 32,
        '0_2': 4 + 4 + 8, '1_2': 8 + 8 + 16,
        '0_3': 4 + 2 * 4 + 8,
    }
    assert set(head.nodes) == set(expected_in)
    for key, c_in in expected_in.items():
        first_conv = head.nodes[key].convs[0].conv
        assert first_conv.in_channels == c_in, key


def test_deep_supervision_losses_match_independent_ce():
    head = build(deep_supervision=True, ds_loss_weight=[0.5, 0.25]).train()
    levels = make_levels(2, IN_CHANNELS, (16, 24))
    labels = random_labels(2, (16, 24), 3)
    losses = head.loss(levels, make_samples(labels), dict())
    assert set(losses) == {'loss_ce', 'loss_ce_ds1', 'loss_ce_ds2',
                           'acc_seg'}
    # independent: CE of each top-row node through its own 1x1 classifier
    # (train-mode BN is deterministic for a fixed batch)
    top = head._top_row(levels)
    expect = {
        'loss_ce': mmseg_ce(head.conv_seg(top[2]), labels),
        'loss_ce_ds1': 0.5 * mmseg_ce(
            head.ds_convs[0](top[0]), labels),
        'loss_ce_ds2': 0.25 * mmseg_ce(
            head.ds_convs[1](top[1]), labels),
    }
    for key, value in expect.items():
        torch.testing.assert_close(losses[key], value, msg=key)


def test_deep_supervision_classifiers_init_like_conv_seg():
    head = build(deep_supervision=True, channels=64,
                 decoder_channels=[64, 8, 16])
    head.init_weights()
    for conv in [head.conv_seg, *head.ds_convs]:
        assert 0.005 < conv.weight.detach().std().item() < 0.015
        assert conv.bias.detach().abs().max().item() == 0.0


def test_deep_supervision_off_has_no_extra_outputs():
    head = build()
    assert head.ds_convs is None
    losses = head.loss(make_levels(2, IN_CHANNELS, (16, 16)),
                       make_samples(random_labels(2, (16, 16), 3)), dict())
    assert set(losses) == {'loss_ce', 'acc_seg'}


def test_ds_inference_modes():
    levels = make_levels(2, IN_CHANNELS, (12, 20))
    last = build(deep_supervision=True, ds_inference='last').eval()
    mean = build(deep_supervision=True, ds_inference='mean').eval()
    mean.load_state_dict(last.state_dict())
    top = last._top_row(levels)
    final = last.conv_seg(top[2])
    torch.testing.assert_close(last(levels), final)
    probs = [F.softmax(z, dim=1) for z in
             (last.ds_convs[0](top[0]), last.ds_convs[1](top[1]), final)]
    expected = torch.log(torch.stack(probs).mean(0))
    torch.testing.assert_close(mean(levels), expected)
    torch.testing.assert_close(mean(levels).exp().sum(1),
                               torch.ones(2, 12, 20))


def test_merge_probabilities_sigmoid_and_stability():
    z = [torch.tensor([[[[3.0]]]]), torch.tensor([[[[-1.0]]]])]
    p = (torch.sigmoid(z[0]) + torch.sigmoid(z[1])) / 2
    torch.testing.assert_close(merge_probabilities(z), torch.log(p / (1 - p)))
    # one branch saturated: still finite, argmax follows the mean
    big = [torch.tensor([0., 200.]).view(1, 2, 1, 1),
           torch.tensor([0., -200.]).view(1, 2, 1, 1)]
    out = merge_probabilities(big)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.exp().sum(1), torch.ones(1, 1, 1))


@pytest.mark.parametrize('kwargs, match', [
    (dict(in_channels=[4, 8], in_index=[0, 1], deep_supervision=True),
     'at least 3 levels'),
    (dict(deep_supervision=True, ds_loss_weight=[1.0]), 'ds_loss_weight'),
    (dict(deep_supervision=True, ds_loss_weight=-1.0), 'ds_loss_weight'),
    (dict(ds_inference='best'), 'ds_inference'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build(**kwargs)
