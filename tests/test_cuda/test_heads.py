"""The plugin's heads and segmentor on CUDA equal their CPU results in
float32: UNet++ (deep supervision, both inference modes, every pruning
level), Attention U-Net (both gate modes), every CeCo head (inference
logits, and the training losses with loss_ceco and their gradients), a
whole EncoderDecoder with a CeCo UNet++ head, and the logit-adjusted
segmentor's predictions.

TF32 is off (tests/test_cuda/conftest.py). Tolerance: ``rtol=1e-4,
atol=1e-5`` for logits and losses, ``rtol=1e-3, atol=1e-5`` for parameter
gradients (train-mode BN divides by batch statistics).
"""
import copy

import pytest
import torch
from mmengine.config import ConfigDict
from mmseg.registry import MODELS

import mmseg_longtail  # noqa: F401  (registers the heads)
from tests.test_cuda.conftest import to_cpu
from tests.test_models.test_heads.head_test_utils import (IN_CHANNELS,
                                                          make_levels,
                                                          make_samples,
                                                          random_labels,
                                                          total_loss)
from tests.test_models.test_heads.test_ceco import HEADS as CECO_HEADS

pytestmark = pytest.mark.cuda

TOL = dict(rtol=1e-4, atol=1e-5)
GRAD_TOL = dict(rtol=1e-3, atol=1e-5)
COUNTS = [50, 20, 5]
SIZE = (16, 24)

MULTI = dict(in_channels=IN_CHANNELS, in_index=[0, 1, 2, 3], channels=4)
HEADS = {
    'unetpp': dict(type='UNetPlusPlusHead', **MULTI),
    'unetpp_ds_last': dict(type='UNetPlusPlusHead', deep_supervision=True,
                           **MULTI),
    'unetpp_ds_mean': dict(type='UNetPlusPlusHead', deep_supervision=True,
                           ds_inference='mean', **MULTI),
    'unetpp_pruned_1': dict(type='UNetPlusPlusHead', deep_supervision=True,
                            prune_level=1, **MULTI),
    'unetpp_pruned_2_mean': dict(type='UNetPlusPlusHead',
                                 deep_supervision=True, prune_level=2,
                                 ds_inference='mean', **MULTI),
    'unetpp_pruned_3': dict(type='UNetPlusPlusHead', prune_level=3,
                            **MULTI),
    'attunet': dict(type='AttentionUNetHead', **MULTI),
    'attunet_gating': dict(type='AttentionUNetHead',
                           gate_cfg=dict(mode='gating'), **MULTI),
}
HEADS.update({
    f'CeCo{name}': dict(type=f'CeCo{name}', ceco_cfg=dict(
        class_counts=COUNTS, channels=4), **cfg)
    for name, cfg in CECO_HEADS.items()
})


def build_pair(cfg: dict, device: str):
    cfg = dict(num_classes=3, dropout_ratio=0.0, norm_cfg=dict(type='BN'),
               **cfg)
    torch.manual_seed(0)
    cpu = MODELS.build(cfg)
    cpu.init_weights()
    return cpu, copy.deepcopy(cpu).to(device)


@pytest.mark.parametrize('name', sorted(HEADS))
def test_head_inference_matches_cpu(name, device):
    cpu, dev = build_pair(HEADS[name], device)
    cpu.eval()
    dev.eval()
    levels = make_levels(2, IN_CHANNELS, SIZE)
    with torch.no_grad():
        want = cpu(levels)
        got = dev([x.to(device) for x in levels])
    assert got.device.type == torch.device(device).type
    torch.testing.assert_close(to_cpu(got), want, **TOL)


@pytest.mark.parametrize('name', sorted(HEADS))
def test_head_training_losses_match_cpu(name, device):
    """Train mode (BN on batch statistics, deep supervision, loss_ceco):
    the same losses and parameter gradients on both devices."""
    cpu, dev = build_pair(HEADS[name], device)
    levels = make_levels(2, IN_CHANNELS, SIZE)
    labels = random_labels(2, SIZE, 3)
    results = []
    for head, where in ((cpu, 'cpu'), (dev, device)):
        head.train()
        losses = head.loss([x.to(where) for x in levels],
                           make_samples(labels.to(where)), dict())
        total_loss(losses).backward()
        grads = {k: to_cpu(p.grad) for k, p in head.named_parameters()
                 if p.grad is not None}
        results.append((to_cpu(losses), grads))
    (loss_c, grad_c), (loss_d, grad_d) = results
    assert loss_d.keys() == loss_c.keys()
    if name.startswith('CeCo'):
        assert 'loss_ceco' in loss_d
    for key in loss_c:
        torch.testing.assert_close(loss_d[key], loss_c[key], **TOL, msg=key)
    assert grad_d.keys() == grad_c.keys()
    for key in grad_c:
        torch.testing.assert_close(grad_d[key], grad_c[key], **GRAD_TOL,
                                   msg=key)


def test_ceco_encoder_decoder_matches_cpu(device):
    """A whole EncoderDecoder (UNetEncoder + CeCo UNet++ head): predict
    and tensor modes and the training losses on both devices."""
    cfg = dict(
        type='EncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor'),
        backbone=dict(type='UNetEncoder', base_channels=4, num_stages=4,
                      strides=(1, 1, 1, 1), enc_num_convs=(1, 1, 1, 1),
                      downsamples=(True, True, True),
                      enc_dilations=(1, 1, 1, 1)),
        decode_head=dict(type='CeCoUNetPlusPlusHead',
                         in_channels=[4, 8, 16, 32], in_index=[0, 1, 2, 3],
                         channels=4, num_classes=3, dropout_ratio=0.0,
                         norm_cfg=dict(type='BN'),
                         ceco_cfg=dict(class_counts=COUNTS, channels=8)),
        test_cfg=ConfigDict(mode='whole'))
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    torch.manual_seed(0)
    cpu = MODELS.build(cfg)
    cpu.init_weights()
    dev = copy.deepcopy(cpu).to(device)
    inputs = torch.randn(2, 3, 20, 28)
    labels = random_labels(2, (20, 28), 3)
    outs = []
    for model, where in ((cpu, 'cpu'), (dev, device)):
        model.eval()
        with torch.no_grad():
            pred = model.predict(inputs.to(where),
                                 make_samples(labels.to(where)))
            tensor = model(inputs.to(where), mode='tensor')
        model.train()
        losses = model.loss(inputs.to(where), make_samples(labels.to(where)))
        outs.append(([to_cpu(p.seg_logits.data) for p in pred],
                     to_cpu(tensor), to_cpu(losses)))
    (pred_c, tensor_c, loss_c), (pred_d, tensor_d, loss_d) = outs
    for a, b in zip(pred_d, pred_c):
        torch.testing.assert_close(a, b, **TOL)
    torch.testing.assert_close(tensor_d, tensor_c, **TOL)
    assert 'decode.loss_ceco' in loss_d and loss_d.keys() == loss_c.keys()
    for key in loss_c:
        torch.testing.assert_close(loss_d[key], loss_c[key], **TOL, msg=key)


@pytest.mark.parametrize('tau', [0.0, 1.0])
def test_logit_adjusted_segmentor_matches_cpu(tau, device):
    """LogitAdjustedEncoderDecoder's test_step (resize, flip, adjustment)
    on CUDA: the CPU's logits, and its predictions wherever the two best
    adjusted classes are not within the tolerance of each other."""
    from tests.test_models.test_segmentors import test_logit_adjustment
    from tests.tiny_runner import tiny_model
    LA_COUNTS = test_logit_adjustment.COUNTS
    batch = test_logit_adjustment.batch
    cfg = tiny_model()
    cfg['type'] = 'LogitAdjustedEncoderDecoder'
    cfg['test_cfg'] = dict(mode='whole', logit_adjust=dict(
        class_counts=LA_COUNTS, tau=tau))
    torch.manual_seed(0)
    cpu = MODELS.build(ConfigDict(cfg))
    cpu.init_weights()
    cpu.eval()
    dev = copy.deepcopy(cpu).to(device).eval()
    with torch.no_grad():
        want = cpu.test_step(batch())
        got = dev.test_step(batch())
    log_pi = torch.log(torch.tensor(LA_COUNTS, dtype=torch.float64) /
                       sum(LA_COUNTS)).float().view(-1, 1, 1)
    for a, b in zip(got, want):
        logits = to_cpu(a.seg_logits.data)
        torch.testing.assert_close(logits, b.seg_logits.data, **TOL)
        adjusted = b.seg_logits.data - tau * log_pi
        top2 = adjusted.topk(2, dim=0).values
        clear = (top2[0] - top2[1]) > 1e-3
        pred_d = to_cpu(a.pred_sem_seg.data)[0]
        pred_c = b.pred_sem_seg.data[0]
        assert torch.equal(pred_d[clear], pred_c[clear])
