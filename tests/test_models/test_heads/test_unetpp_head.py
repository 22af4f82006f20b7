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


def record_nodes(head):
    """Names of the nodes run by ``head``, in call order (forward hooks)."""
    called = []
    for key, node in head.nodes.items():
        node.register_forward_hook(
            lambda module, args, out, key=key: called.append(key))
    return called


@pytest.mark.parametrize('ds_inference', ['last', 'mean'])
@pytest.mark.parametrize('depth, nodes', [
    (1, ['0_1']),
    (2, ['0_1', '1_1', '0_2']),
    (3, ['0_1', '1_1', '2_1', '0_2', '1_2', '0_3']),
])
def test_pruned_network_is_the_full_networks_subnetwork(
        depth, nodes, ds_inference):
    # UNet++ L^d (Zhou et al., TMI 2019): X[i,j] with i + j <= d only,
    # d(d+1)/2 nodes, classified at X[0,d] by its own classifier
    levels = make_levels(2, IN_CHANNELS, (13, 21))
    full = build(deep_supervision=True, ds_inference=ds_inference).eval()
    pruned = build(deep_supervision=True, ds_inference=ds_inference,
                   prune_level=depth).eval()
    pruned.load_state_dict(full.state_dict())
    called = record_nodes(pruned)
    out = pruned(levels)
    assert called == nodes and len(nodes) == depth * (depth + 1) // 2
    top = full._top_row(levels)
    classifiers = [*full.ds_convs, full.conv_seg]
    logits = [classifiers[j](top[j]) for j in range(depth)]
    if ds_inference == 'last':
        assert torch.equal(out, logits[-1])  # bit for bit
    else:  # the accurate mode of L^d: mean probability of X[0,1..d]
        probs = torch.stack([F.softmax(z, dim=1) for z in logits])
        torch.testing.assert_close(out, probs.mean(0).log())
    # levels deeper than d are not read
    moved = [x if i <= depth else x + 3.0 for i, x in enumerate(levels)]
    assert torch.equal(pruned(moved), out)
    if depth < 3:
        assert not torch.allclose(full(moved), full(levels))


def test_pruning_leaves_training_unchanged():
    plain = build(deep_supervision=True).train()
    pruned = build(deep_supervision=True, prune_level=1).train()
    pruned.load_state_dict(plain.state_dict())
    called = record_nodes(pruned)
    levels = make_levels(2, IN_CHANNELS, (16, 24))
    samples = make_samples(random_labels(2, (16, 24), 3))
    losses = pruned.loss(levels, samples, dict())
    assert len(called) == 6  # the whole grid, every output supervised
    for key, value in plain.loss(levels, samples, dict()).items():
        torch.testing.assert_close(losses[key], value, msg=key)
    assert pruned(levels).shape == (2, 3, 16, 24) and len(called) == 12
    called.clear()
    pruned.eval()(levels)
    assert called == ['0_1']


def test_prune_level_at_the_top_needs_no_deep_supervision():
    # L^{L-1} is the whole network, classified by conv_seg
    levels = make_levels(1, IN_CHANNELS, (11, 9))
    full = build().eval()
    top = build(prune_level=3).eval()
    top.load_state_dict(full.state_dict())
    assert torch.equal(top(levels), full(levels))


@pytest.mark.parametrize('kwargs, match', [
    (dict(prune_level=0), r'prune_level must be None or an int in 1\.\.3'),
    (dict(prune_level=4), r'in 1\.\.3'),
    (dict(prune_level=True), 'prune_level'),
    (dict(prune_level='2'), 'prune_level'),
    (dict(prune_level=2), 'set deep_supervision=True'),
])
def test_bad_prune_level(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build(**kwargs)


def test_pruning_benchmark_counts_nodes_and_macs(capsys):
    from pathlib import Path

    from mmseg_longtail.analysis.benchmark_models import \
        benchmark_unetpp_pruning
    config = (Path(__file__).resolve().parents[3] / 'configs' / '_base_' /
              'models' / 'unetpp.py')
    rows = benchmark_unetpp_pruning(str(config), shape=(1, 3, 16, 16),
                                    num_classes=2, repeats=1, warmup=0)
    assert [r['nodes'] for r in rows] == [1, 3, 6, 10]
    # conv MACs of L^1 at 16x16 (channels 32, levels 32/64, 2 convs):
    # X[0,1] = 3x3 convs 96->32 and 32->32, plus its 1x1 classifier
    assert rows[0]['head_macs'] == 16 * 16 * (9 * 96 * 32 + 9 * 32 * 32 +
                                              32 * 2)
    macs = [r['head_macs'] for r in rows]
    assert macs == sorted(set(macs))
    table = [line for line in capsys.readouterr().out.splitlines()
             if line.startswith('| L^')]
    assert [line.split('|')[1].strip() for line in table] == [
        'L^1', 'L^2', 'L^3', 'L^4 (full)']
