import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmseg.registry import MODELS

import mmseg_longtail  # noqa: F401  (registers the heads)
from mmseg_longtail.models.decode_heads import (CeCoBranch, CeCoMixin,
                                                simplex_etf, with_ceco)
from .head_test_utils import (IN_CHANNELS, make_levels, make_samples,
                              params_without_grad, random_labels, total_loss)

COUNTS = [50, 20, 5]


# ------------------------------------------------------------------ the ETF
@pytest.mark.parametrize('dim, num_classes', [(3, 3), (8, 3), (32, 19),
                                              (2, 2)])
def test_etf_is_a_simplex(dim, num_classes):
    w = simplex_etf(dim, num_classes, seed=0).double()
    assert w.shape == (dim, num_classes)
    gram = w.T @ w
    c = num_classes
    expected = (torch.eye(c, dtype=torch.float64) * c / (c - 1) -
                1.0 / (c - 1))  # unit columns, pairwise cosine -1/(C-1)
    torch.testing.assert_close(gram, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(w.norm(dim=0), torch.ones(c,
                                                         dtype=torch.float64))
    # columns sum to zero (centred simplex)
    torch.testing.assert_close(w.sum(1), torch.zeros(dim, dtype=torch.float64),
                               atol=1e-6, rtol=0)


def test_etf_seeded_and_identical_across_builds():
    torch.manual_seed(123)  # the global RNG must not matter
    a = CeCoBranch(8, 3, class_counts=COUNTS, channels=16, seed=7)
    torch.manual_seed(456)
    b = CeCoBranch(8, 3, class_counts=COUNTS, channels=16, seed=7)
    c = CeCoBranch(8, 3, class_counts=COUNTS, channels=16, seed=8)
    assert torch.equal(a.etf, b.etf)
    assert not torch.allclose(a.etf, c.etf)
    assert 'etf' in a.state_dict() and 'log_prior' not in a.state_dict()
    assert not a.etf.requires_grad


def test_etf_errors():
    with pytest.raises(ValueError, match='ceco_cfg.channels=2'):
        simplex_etf(2, 3)
    with pytest.raises(ValueError, match='num_classes >= 2'):
        simplex_etf(4, 1)


# ------------------------------------------------------------------ the loss
def reference_loss(branch, feat, labels, stride):
    """Per-class loop over masks: the definition, written plainly."""
    z = branch.reduce(feat).permute(0, 2, 3, 1)
    lab = labels[:, ::stride, ::stride]  # nearest downsampling, exact factor
    log_prior = torch.log(torch.tensor(COUNTS, dtype=torch.float64) /
                          sum(COUNTS)).float()
    terms = []
    for c in range(branch.num_classes):
        mask = lab == c
        if not mask.any():
            continue
        center = z[mask].mean(0)
        emb = F.normalize(branch.proj(center), dim=0)
        logits = branch.scale * emb @ branch.etf + log_prior
        terms.append(-F.log_softmax(logits, dim=0)[c])
    if not terms:
        return torch.zeros(())
    return branch.loss_weight * torch.stack(terms).mean()


@pytest.mark.parametrize('absent', [False, True])
def test_loss_matches_reference(absent):
    torch.manual_seed(0)
    branch = CeCoBranch(6, 3, class_counts=COUNTS, channels=8, scale=5.0,
                        loss_weight=0.8).train()
    feat = torch.randn(2, 6, 8, 10)
    labels = random_labels(2, (16, 20), 3, ignore_frac=0.3)
    if absent:
        labels[labels == 1] = 2  # class 1 absent
    loss = branch(feat, labels)
    torch.testing.assert_close(loss, reference_loss(branch, feat, labels, 2))


def test_ignored_labels_are_excluded_out_of_range_refused():
    torch.manual_seed(0)
    branch = CeCoBranch(6, 3, class_counts=COUNTS, channels=8).train()
    feat = torch.randn(2, 6, 8, 8)
    labels = random_labels(2, (8, 8), 3, ignore_frac=0.0)
    relabelled = labels.clone()
    noise = torch.rand(2, 8, 8, generator=torch.Generator().manual_seed(1))
    relabelled[noise < 0.3] = 255
    # BN statistics see all pixels either way; only the centers differ
    ref = reference_loss(branch, feat, relabelled, 1)
    torch.testing.assert_close(branch(feat, relabelled), ref)
    for bad in (3, 200, -1):  # neither a class id nor ignore_index
        wrong = relabelled.clone()
        wrong[0, 0, 0] = bad
        with pytest.raises(ValueError, match=rf'^CeCoBranch: label values '
                           rf'{bad} are outside the class ids 0\.\.2'):
            branch(feat, wrong)


def test_all_ignored_gives_zero_and_finite_grads():
    branch = CeCoBranch(6, 3, class_counts=[0, 0, 4], channels=8).train()
    feat = torch.randn(2, 6, 4, 4, requires_grad=True)
    loss = branch(feat, torch.full((2, 4, 4), 255))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(feat.grad).all()
    for p in branch.parameters():
        assert p.grad is None or torch.isfinite(p.grad).all()
    # zero counts are clamped: the prior stays finite
    assert torch.isfinite(branch.log_prior).all()


def test_feature_resize_mode():
    torch.manual_seed(0)
    branch = CeCoBranch(6, 3, class_counts=COUNTS, channels=8,
                        resize_mode='feature').train()
    feat = torch.randn(2, 6, 4, 5)
    labels = random_labels(2, (8, 10), 3)
    # independent: upsample the reduced feature, then per-class means
    z = F.interpolate(branch.reduce(feat), size=(8, 10), mode='bilinear',
                      align_corners=False).permute(0, 2, 3, 1)
    log_prior = torch.log(torch.tensor(COUNTS) / sum(COUNTS))
    terms = []
    for c in range(3):
        emb = F.normalize(branch.proj(z[labels == c].mean(0)), dim=0)
        logits = branch.scale * emb @ branch.etf + log_prior
        terms.append(-F.log_softmax(logits, 0)[c])
    torch.testing.assert_close(branch(feat, labels),
                               0.8 * torch.stack(terms).mean())


def test_class_counts_from_json(tmp_path):
    path = tmp_path / 'stats.json'
    path.write_text(json.dumps(dict(
        classes=['a', 'b', 'c'], ignore_index=255, num_images=10,
        pixel_counts=[1000, 100, 10], image_counts=[10, 4, 0])))
    branch = CeCoBranch(6, 3, class_counts=str(path), channels=8)
    expected = np.log(np.array([10, 4, 1]) / 15)  # zero clamped to 1
    np.testing.assert_allclose(branch.log_prior.numpy(), expected, rtol=1e-6)
    pixel = CeCoBranch(6, 3, class_counts=str(path), channels=8,
                       count_type='pixel')
    np.testing.assert_allclose(pixel.log_prior.numpy(),
                               np.log(np.array([1000, 100, 10]) / 1110),
                               rtol=1e-6)


@pytest.mark.parametrize('kwargs, match', [
    (dict(class_counts=None), 'ceco_cfg.class_counts is required'),
    (dict(class_counts=[1, 2]), 'ceco_cfg.class_counts has 2 counts'),
    (dict(class_counts=[1, -2, 3]), 'ceco_cfg.class_counts has negative'),
    (dict(class_counts='missing.json'), 'ceco_cfg.class_counts'),
    (dict(resize_mode='both'), 'resize_mode'),
    (dict(loss_name='ceco'), 'loss_name'),
    (dict(channels=2), 'channels=2'),
])
def test_branch_errors(kwargs, match):
    cfg = dict(class_counts=COUNTS, channels=8)
    cfg.update(kwargs)
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        CeCoBranch(6, 3, **cfg)


# ------------------------------------------------------------ on the heads
HEADS = {
    'FCNHead': dict(in_channels=16, in_index=2, channels=4, num_convs=1),
    'ASPPHead': dict(in_channels=32, in_index=3, channels=4,
                     dilations=(1, 2)),
    'DepthwiseSeparableASPPHead': dict(
        in_channels=32, in_index=3, channels=4, dilations=(1, 2),
        c1_in_channels=4, c1_channels=2),
    'UPerHead': dict(in_channels=IN_CHANNELS, in_index=[0, 1, 2, 3],
                     channels=4, pool_scales=(1, 2)),
    'UNetPlusPlusHead': dict(in_channels=IN_CHANNELS, in_index=[0, 1, 2, 3],
                             channels=4, deep_supervision=True),
    'AttentionUNetHead': dict(in_channels=IN_CHANNELS,
                              in_index=[0, 1, 2, 3], channels=4),
}


def build_pair(name):
    common = dict(num_classes=3, dropout_ratio=0.0,
                  norm_cfg=dict(type='BN'), **HEADS[name])
    torch.manual_seed(0)
    plain = MODELS.build(dict(type=name, **common))
    ceco = MODELS.build(dict(type=f'CeCo{name}', **common,
                             ceco_cfg=dict(class_counts=COUNTS, channels=4)))
    missing, unexpected = ceco.load_state_dict(plain.state_dict(),
                                               strict=False)
    assert unexpected == []
    assert missing and all(k.startswith('ceco.') for k in missing)
    return plain, ceco


@pytest.mark.parametrize('name', list(HEADS))
def test_ceco_heads(name):
    plain, ceco = build_pair(name)
    assert isinstance(ceco, CeCoMixin) and isinstance(ceco, type(plain))
    levels = make_levels(2, IN_CHANNELS, (16, 20))
    labels = random_labels(2, (16, 20), 3)

    # inference: bit-identical logits, the branch never runs
    plain.eval()
    ceco.eval()
    ceco.ceco.forward = None  # calling the branch would raise
    assert torch.equal(plain(levels), ceco(levels))
    metas = [dict(img_shape=(16, 20), pad_shape=(16, 20))] * 2
    assert torch.equal(plain.predict(levels, metas, dict()),
                       ceco.predict(levels, metas, dict()))
    del ceco.ceco.forward

    # training: the same head losses plus loss_ceco on the conv_seg input
    plain.train()
    ceco.train()
    seen = {}
    ceco.conv_seg.register_forward_pre_hook(
        lambda m, args: seen.setdefault('conv_seg_in', args[0]))
    tapped = {}
    branch_forward = ceco.ceco.forward

    def spy(feat, seg_label):
        tapped['feat'] = feat
        return branch_forward(feat, seg_label)

    ceco.ceco.forward = spy
    ref = plain.loss(levels, make_samples(labels), dict())
    losses = ceco.loss(levels, make_samples(labels), dict())
    assert set(losses) == set(ref) | {'loss_ceco'}
    for key in ref:
        assert torch.equal(losses[key], ref[key]), key
    assert tapped['feat'] is seen['conv_seg_in']
    assert tapped['feat'].shape[1] == ceco.channels
    assert ceco._ceco_feat is None  # not kept after the step
    assert torch.isfinite(losses['loss_ceco']) and losses['loss_ceco'] > 0
    del ceco.ceco.forward
    total_loss(losses).backward()
    assert params_without_grad(ceco.ceco) == []


def test_mixin_errors():
    common = dict(type='CeCoFCNHead', num_classes=3, **HEADS['FCNHead'])
    with pytest.raises(ValueError, match='ceco_cfg must be a dict'):
        MODELS.build(common)
    with pytest.raises(ValueError, match='must not set'):
        MODELS.build(dict(common, ceco_cfg=dict(class_counts=COUNTS,
                                                num_classes=3)))
    with pytest.raises(ValueError, match='channels=4 must be >= num_classes'):
        MODELS.build(dict(common, num_classes=5,
                          ceco_cfg=dict(class_counts=[1] * 5, channels=4)))


def test_with_ceco_any_head():
    from mmseg.models.decode_heads import PSPHead
    cls = with_ceco(PSPHead, register=False)
    assert cls.__name__ == 'CeCoPSPHead'
    head = cls(in_channels=16, in_index=2, channels=4, num_classes=3,
               pool_scales=(1, 2), norm_cfg=dict(type='BN'),
               ceco_cfg=dict(class_counts=COUNTS, channels=4))
    levels = make_levels(2, IN_CHANNELS, (16, 16))
    losses = head.loss(levels, make_samples(random_labels(2, (16, 16), 3)),
                       dict())
    assert math.isfinite(losses['loss_ceco'].item())


def test_encoder_decoder_modes():
    """Through a real EncoderDecoder: loss has decode.loss_ceco; predict and
    tensor modes never call the branch and match the plain model bit for
    bit."""
    def cfg(head_type, **extra):
        return dict(
            type='EncoderDecoder',
            data_preprocessor=dict(type='SegDataPreProcessor'),
            backbone=dict(type='UNetEncoder', base_channels=4, num_stages=4,
                          strides=(1, 1, 1, 1), enc_num_convs=(1, 1, 1, 1),
                          downsamples=(True, True, True),
                          enc_dilations=(1, 1, 1, 1)),
            decode_head=dict(type=head_type, in_channels=[4, 8, 16, 32],
                             in_index=[0, 1, 2, 3], channels=4,
                             num_classes=3, dropout_ratio=0.0,
                             norm_cfg=dict(type='BN'), **extra),
            test_cfg=ConfigDict(mode='whole'))  # as a loaded config has

    torch.manual_seed(0)
    plain = MODELS.build(cfg('UNetPlusPlusHead'))
    ceco = MODELS.build(cfg('CeCoUNetPlusPlusHead',
                            ceco_cfg=dict(class_counts=COUNTS, channels=8)))
    ceco.load_state_dict(plain.state_dict(), strict=False)
    inputs = torch.randn(2, 3, 20, 28)
    labels = random_labels(2, (20, 28), 3)
    plain.eval()
    ceco.eval()

    def boom(*args):
        raise AssertionError('CeCo ran outside training')

    ceco.decode_head.ceco.forward = boom
    with torch.no_grad():
        out_plain = plain.predict(inputs, make_samples(labels))
        out_ceco = ceco.predict(inputs, make_samples(labels))
        for a, b in zip(out_plain, out_ceco):
            assert torch.equal(a.seg_logits.data, b.seg_logits.data)
            assert torch.equal(a.pred_sem_seg.data, b.pred_sem_seg.data)
        assert torch.equal(plain(inputs, mode='tensor'),
                           ceco(inputs, mode='tensor'))
    del ceco.decode_head.ceco.forward

    ceco.train()
    losses = ceco.loss(inputs, make_samples(labels))
    assert 'decode.loss_ceco' in losses
    total_loss(losses).backward()
    assert params_without_grad(ceco) == []


def test_ceco_gradient_reaches_the_head_features_only():
    """loss_ceco alone trains the head's feature layers (what CeCo is for)
    and leaves the classifier alone."""
    _, head = build_pair('FCNHead')
    head.train()
    levels = make_levels(2, IN_CHANNELS, (16, 16))
    losses = head.loss(levels, make_samples(random_labels(2, (16, 16), 3)),
                       dict())
    losses['loss_ceco'].backward()
    assert head.conv_seg.weight.grad is None
    assert params_without_grad(head.convs) == []
    assert params_without_grad(head.ceco) == []


@pytest.mark.parametrize('freeze', [True, False])
def test_freeze_keeps_the_official_frozen_tensors(freeze):
    """``freeze=True`` (the official GPaCo/Seg training): after optimizer
    steps (momentum, weight decay) the reduction, its norm, the projection
    and the ETF are unchanged while the head learns; ``freeze=False``
    trains the branch."""
    common = dict(num_classes=3, dropout_ratio=0.0,
                  norm_cfg=dict(type='BN'), **HEADS['FCNHead'])
    torch.manual_seed(0)
    head = MODELS.build(dict(type='CeCoFCNHead', **common, ceco_cfg=dict(
        class_counts=COUNTS, channels=4, freeze=freeze)))
    head.train()
    branch = {k: v.clone() for k, v in head.ceco.named_parameters()}
    branch['etf'] = head.ceco.etf.clone()
    conv_seg = head.conv_seg.weight.clone()
    opt = torch.optim.SGD(head.parameters(), lr=0.1, momentum=0.9,
                          weight_decay=1e-2)
    for step in range(3):
        levels = make_levels(2, IN_CHANNELS, (16, 16), seed=step)
        labels = random_labels(2, (16, 16), 3, seed=step)
        opt.zero_grad()
        total_loss(head.loss(levels, make_samples(labels), dict())).backward()
        opt.step()
    assert torch.equal(head.ceco.etf, branch.pop('etf'))
    assert set(branch) == {'reduce.conv.weight', 'reduce.bn.weight',
                           'reduce.bn.bias', 'proj.0.weight', 'proj.0.bias',
                           'proj.2.weight', 'proj.2.bias'}
    for name, param in head.ceco.named_parameters():
        assert torch.equal(param, branch[name]) == freeze, name
        assert param.requires_grad != freeze
    assert not torch.equal(head.conv_seg.weight, conv_seg)
