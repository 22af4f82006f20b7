"""Every model base config builds and trains/predicts through a real mmseg
EncoderDecoder; the U-Net-family heads work on mmseg and mmpretrain
backbones."""
import copy
from pathlib import Path

import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmseg_longtail  # noqa: F401  (registers the heads and backbone)
from mmseg_longtail.analysis.benchmark_models import (benchmark_models,
                                                      build_model,
                                                      sync_bn_to_bn)
from tests.conftest import run_tool
from .head_test_utils import params_without_grad, random_labels, total_loss

REPO = Path(__file__).resolve().parents[3]
MODELS_DIR = REPO / 'configs' / '_base_' / 'models'
BASES = ['unet.py', 'attunet.py', 'unetpp.py', 'deeplabv3.py',
         'deeplabv3plus.py', 'deeplabv3plus_ceco.py', 'unetpp_ceco.py']
NUM_CLASSES = 3


def model_cfg(name, sync_bn=False, narrow=False):
    """The base's model dict, C=3, BN; ``narrow`` shrinks the heads' widths
    (the ASPP heads' 512 channels dominate the cost of a CPU test)."""
    cfg = Config.fromfile(str(MODELS_DIR / name)).model.to_dict()
    for head in ('decode_head', 'auxiliary_head'):
        cfg[head]['num_classes'] = NUM_CLASSES
        if narrow:
            cfg[head]['channels'] = 16
    if 'ceco_cfg' in cfg['decode_head']:
        cfg['decode_head']['ceco_cfg']['class_counts'] = [30, 10, 2]
    # ConfigDict, as the runner passes (EncoderDecoder reads test_cfg.mode)
    return ConfigDict(cfg if sync_bn else sync_bn_to_bn(cfg))


def make_batch(size, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    h, w = size
    labels = random_labels(batch, size, NUM_CLASSES, seed=seed)
    inputs, samples = [], []
    for label in labels:
        inputs.append(torch.randint(0, 256, (3, h, w), generator=g,
                                    dtype=torch.uint8))
        sample = SegDataSample(metainfo=dict(
            img_shape=(h, w), ori_shape=(h, w)))
        sample.gt_sem_seg = PixelData(data=label[None])
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def test_all_bases_are_listed():
    assert sorted(p.name for p in MODELS_DIR.glob('*.py')) == sorted(BASES)


@pytest.mark.parametrize('name', BASES)
def test_base_config_trains_and_predicts(name):
    cfg = model_cfg(name, narrow='deeplab' in name)
    assert cfg['pretrained'] is None  # no download at build time
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    size = (30, 40)  # not divisible by 16 or 32
    # training pads to data_preprocessor.size (set by data set configs);
    # mmseg's UNet needs multiples of 16, the other models take any size
    model.data_preprocessor.size = (32, 48) if name == 'unet.py' else size
    model.train()
    data = model.data_preprocessor(make_batch(size), True)
    losses = model(**data, mode='loss')
    expected = {'decode.loss_ce', 'aux.loss_ce'}
    if 'ceco' in name:
        expected.add('decode.loss_ceco')
    assert expected <= set(losses)
    loss = total_loss(losses)
    assert torch.isfinite(loss)
    loss.backward()
    # mmseg's ResNets zero-init the last BN of each residual block
    # (zero_init_residual), so some backbone grads are exactly 0 at init:
    # check that backward reaches them, and is non-zero in the heads.
    assert params_without_grad(model, nonzero=False) == []
    assert params_without_grad(model.decode_head) == []

    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(make_batch(size, seed=1), False)
        preds = model(**data, mode='predict')
    assert len(preds) == 2
    for pred in preds:
        assert pred.pred_sem_seg.data.shape == (1, *size)
        assert pred.seg_logits.data.shape == (NUM_CLASSES, *size)
        assert int(pred.pred_sem_seg.data.max()) < NUM_CLASSES


def test_syncbn_is_bn_in_a_single_process():
    """The bases keep mmseg's SyncBN; without a process group it computes
    exactly what BN computes, so CPU single-process runs need no change."""
    torch.manual_seed(0)
    sync = MODELS.build(model_cfg('unetpp.py', sync_bn=True))
    bn = MODELS.build(model_cfg('unetpp.py'))
    assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in sync.modules())
    bn.load_state_dict(sync.state_dict())
    sync.train()
    bn.train()
    sync.data_preprocessor.size = bn.data_preprocessor.size = (32, 32)
    batch = make_batch((32, 32))
    torch.manual_seed(1)  # same dropout masks
    losses_sync = sync(**sync.data_preprocessor(copy.deepcopy(batch), True),
                       mode='loss')
    torch.manual_seed(1)
    losses_bn = bn(**bn.data_preprocessor(batch, True), mode='loss')
    for key in losses_bn:
        assert torch.equal(losses_sync[key], losses_bn[key]), key


def head_cfg(head_type, in_channels, **extra):
    return dict(type=head_type, in_channels=in_channels,
                in_index=list(range(len(in_channels))), channels=8,
                num_classes=NUM_CLASSES, dropout_ratio=0.1,
                norm_cfg=dict(type='BN'), **extra)


BACKBONES = {
    'mmseg.ResNetV1c-d8': (dict(type='ResNetV1c', depth=18,
                                dilations=(1, 1, 2, 4),
                                strides=(1, 2, 1, 1),
                                norm_cfg=dict(type='BN')),
                           [64, 128, 256, 512]),
    'mmpretrain.ResNet': (dict(type='mmpretrain.ResNet', depth=18,
                               out_indices=(0, 1, 2, 3)),
                          [64, 128, 256, 512]),
    'mmpretrain.VGG': (dict(type='mmpretrain.VGG', depth=11,
                            norm_cfg=dict(type='BN'),
                            out_indices=(0, 1, 2, 3, 4)),
                       [64, 128, 256, 512, 512]),
}


def mmpretrain_missing():
    """Why mmpretrain's models cannot be imported (None when they can).

    ``type='mmpretrain.X'`` makes mmengine import ``mmpretrain.models``,
    which imports torchvision."""
    try:
        import mmpretrain.models  # noqa: F401
    except ImportError as e:
        return f'{type(e).__name__}: {e}'
    return None


def test_mmpretrain_scope_prefix_resolves():
    reason = mmpretrain_missing()
    if reason:
        pytest.skip(f'mmpretrain.models cannot be imported ({reason}); '
                    'install torchvision for mmpretrain backbones')
    from mmpretrain.models import VGG, ResNet
    assert MODELS.get('mmpretrain.ResNet') is ResNet
    assert MODELS.get('mmpretrain.VGG') is VGG


@pytest.mark.parametrize('backbone', list(BACKBONES))
@pytest.mark.parametrize('head', ['UNetPlusPlusHead', 'AttentionUNetHead'])
def test_heads_on_other_backbones(backbone, head):
    backbone_cfg, channels = BACKBONES[backbone]
    if backbone.startswith('mmpretrain'):
        reason = mmpretrain_missing()
        if reason:
            pytest.skip(f'mmpretrain.models cannot be imported ({reason})')
    extra = dict(deep_supervision=True) if head == 'UNetPlusPlusHead' else {}
    cfg = dict(
        type='EncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor',
                               mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375],
                               size_divisor=1),
        backbone=backbone_cfg,
        decode_head=head_cfg(head, channels, **extra),
        auxiliary_head=dict(type='FCNHead', in_channels=channels[2],
                            in_index=2, channels=8, num_convs=1,
                            num_classes=NUM_CLASSES,
                            norm_cfg=dict(type='BN'),
                            loss_decode=dict(type='CrossEntropyLoss',
                                             loss_weight=0.4)),
        test_cfg=dict(mode='whole'))
    torch.manual_seed(0)
    model = MODELS.build(ConfigDict(cfg))
    size = (36, 44)
    data = model.data_preprocessor(make_batch(size), True)
    losses = model(**data, mode='loss')
    assert 'aux.loss_ce' in losses
    total_loss(losses).backward()
    assert params_without_grad(model.decode_head) == []
    model.eval()
    with torch.no_grad():
        preds = model(**model.data_preprocessor(make_batch(size), False),
                      mode='predict')
    assert preds[0].pred_sem_seg.data.shape == (1, *size)


def test_benchmark_tool_runs(capsys):
    benchmark_models(str(MODELS_DIR), ['unetpp', 'unetpp_ceco'],
                     shape=(2, 3, 32, 32), num_classes=4, repeats=1,
                     warmup=0)
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith('| ')]
    # header, then one row per model (the |---| rule is not matched)
    assert lines[0].startswith('| model | params (M)')
    assert [line.split('|')[1].strip() for line in lines[1:]] == [
        'unetpp', 'unetpp_ceco']
    # parameter counts: the CeCo branch adds (training-only) parameters
    plain = build_model(str(MODELS_DIR / 'unetpp.py'), 4)
    n_plain = sum(p.numel() for p in plain.parameters())
    params = [float(line.split('|')[2]) for line in lines[1:]]
    assert f'{n_plain / 1e6:.2f}' == f'{params[0]:.2f}'
    assert params[1] > params[0]


def test_benchmark_command_line():
    """The tool finds the repository's bases by default; --no-infer drops
    the inference columns."""
    out = run_tool([
        'tools/analysis_tools/benchmark_models.py', '--models', 'unetpp',
        '--shape', '1', '3', '32', '32', '--repeats', '1', '--warmup', '0',
        '--num-classes', '2', '--no-infer', '--threads', '1'
    ]).stdout
    assert '2 classes, device cpu, 1 threads' in out
    table = [line for line in out.splitlines() if line.startswith('| ')]
    assert table[0] == ('| model | params (M) | train step fwd+bwd (ms), '
                        'median | min |')
    assert table[1].startswith('| unetpp |')
