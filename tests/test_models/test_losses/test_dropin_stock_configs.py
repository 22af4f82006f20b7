"""The README's drop-in block on mmseg's own configs.

The block between ``<!-- dropin-snippet:start/end -->`` in README.md is read
from the file and appended, unchanged, to a config that inherits one of
mmseg 1.2.2's stock Cityscapes configs (DeepLabV3+ R50, PSPNet R50, SegFormer
MiT-b0, UPerNet R50); per loss, its ``# or:`` line is uncommented (the last
``loss = ...`` wins, as the README says). Each case builds the model and
trains one step (``model.train_step`` with the config's own optimizer
wrapper), merged into the base's ``CrossEntropyLoss`` dict as written, and
once per model with ``_delete_=True`` added to the loss dict. So the README
cannot drift from what works, and every loss of the package must have its
line.
"""
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import mmseg_longtail  # noqa: F401  (registers the losses)
from mmseg_longtail.models.losses import LongTailLoss

REPO = Path(__file__).resolve().parents[3]
README = REPO / 'README.md'
START, END = '<!-- dropin-snippet:start -->', '<!-- dropin-snippet:end -->'
ALTERNATIVE = '# or: '
NUM_CLASSES = 19  # Cityscapes: every config below
SIZE = 64

STOCK = {
    'deeplabv3plus': ('mmseg::deeplabv3plus/'
                      'deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py'),
    'pspnet': 'mmseg::pspnet/pspnet_r50-d8_4xb2-80k_cityscapes-512x1024.py',
    'segformer':
    'mmseg::segformer/segformer_mit-b0_8xb1-160k_cityscapes-1024x1024.py',
    'upernet': 'mmseg::upernet/upernet_r50_4xb2-80k_cityscapes-512x1024.py',
}
# Why the models are shrunk: at stock widths (ResNet-50, 512-channel heads)
# the training steps below take minutes on a CPU, and what the test checks --
# the config merge into the base's loss dict and the heads' calls of the
# loss -- does not depend on widths. The overrides are applied to the parsed
# config, never touch loss_decode, and keep every head type; batches are
# padded to 64x64 instead of the stock crop. No pretrained weights are read
# (the model is never init_weights-ed).
TINY_RESNET = dict(depth=18, stem_channels=8, base_channels=8)  # 8..64 ch
TINY_AUX = dict(in_channels=32, channels=8)
SHRINK = {
    'deeplabv3plus':
    dict(
        backbone=TINY_RESNET,
        decode_head=dict(
            in_channels=64, channels=8, c1_in_channels=8, c1_channels=8),
        auxiliary_head=TINY_AUX),
    'pspnet':
    dict(
        backbone=TINY_RESNET,
        decode_head=dict(in_channels=64, channels=8),
        auxiliary_head=TINY_AUX),
    'segformer':
    dict(
        backbone=dict(embed_dims=8, init_cfg=None),  # stages 8, 16, 40, 64
        decode_head=dict(in_channels=[8, 16, 40, 64], channels=8)),
    'upernet':
    dict(
        backbone=TINY_RESNET,
        decode_head=dict(in_channels=[8, 16, 32, 64], channels=8),
        auxiliary_head=TINY_AUX),
}


def readme_snippet() -> str:
    text = README.read_text()
    assert text.count(START) == 1 and text.count(END) == 1, (
        f'README.md must hold one {START} ... {END} block')
    block = text.split(START)[1].split(END)[0]
    match = re.fullmatch(r'\s*```python\n(.*?)```\s*', block, re.S)
    assert match, 'the drop-in block must be one ```python code block'
    return match.group(1)


def loss_lines(snippet: str):
    """(loss type, line) of the active ``loss = ...`` line and of each
    ``# or:`` alternative, in order."""
    lines = []
    for line in snippet.splitlines():
        code = line[len(ALTERNATIVE):] if line.startswith(
            ALTERNATIVE) else line
        if code.startswith('loss = dict('):
            lines.append((re.search(r"type='(\w+)'", code).group(1), line))
    return lines


def variant(snippet: str, line: str, delete: bool) -> str:
    """The snippet with ``line`` made the active loss: an alternative is
    uncommented in place (so it follows and overrides the first
    ``loss = ...``); ``delete`` adds ``_delete_=True`` to it."""
    code = line[len(ALTERNATIVE):] if line.startswith(ALTERNATIVE) else line
    if delete:
        code = code.replace('loss = dict(', 'loss = dict(_delete_=True, ', 1)
    assert snippet.count(line + '\n') == 1
    return snippet.replace(line + '\n', code + '\n')


SNIPPET = readme_snippet()
LOSS_LINES = loss_lines(SNIPPET)


def package_losses():
    from mmseg.registry import MODELS
    return sorted(
        name for name, cls in MODELS.module_dict.items()
        if isinstance(cls, type) and issubclass(cls, LongTailLoss))


def test_readme_block_lists_every_loss_once():
    """A loss added to the package needs its line in the README block."""
    listed = [name for name, _ in LOSS_LINES]
    assert sorted(listed) == package_losses()
    assert len(set(listed)) == len(listed)
    assert not LOSS_LINES[0][1].startswith(ALTERNATIVE)


def write_counts(folder: Path, num_classes: int) -> None:
    """The class statistics the snippet names, in ``folder`` (written by the
    package's own writer from long-tailed random labels)."""
    from mmseg_longtail.utils import compute_class_stats, save_class_stats
    path = re.search(r"counts = '([^']+)'", SNIPPET).group(1)
    rng = np.random.default_rng(0)
    prior = 0.5**np.arange(num_classes)
    labels = [
        rng.choice(num_classes, size=(32, 32), p=prior / prior.sum())
        for _ in range(4)
    ]
    labels[0][0, :num_classes] = np.arange(num_classes)  # every class seen
    save_class_stats(
        compute_class_stats(labels, num_classes, progress=False),
        str(folder / path))


@pytest.fixture(scope='module')
def workdir(tmp_path_factory):
    """A user folder with the class statistics the snippet names."""
    folder = tmp_path_factory.mktemp('user')
    write_counts(folder, NUM_CLASSES)
    return folder


def batch():
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    gen = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for _ in range(2):
        inputs.append(
            torch.randint(0, 256, (3, SIZE, SIZE), generator=gen).byte())
        label = torch.randint(
            0, NUM_CLASSES, (1, SIZE, SIZE), generator=gen)
        label[:, :4] = 255  # some unlabelled pixels
        samples.append(SegDataSample(gt_sem_seg=PixelData(data=label)))
    return dict(inputs=inputs, data_samples=samples)


def build_config(workdir: Path, model: str, text: str):
    from mmengine.config import Config
    path = workdir / f'user_{model}.py'
    path.write_text(f"_base_ = ['{STOCK[model]}']\n" + text)
    cfg = Config.fromfile(str(path))
    cfg.merge_from_dict(
        dict(
            model=dict(
                SHRINK[model],
                pretrained=None,
                data_preprocessor=dict(size=(SIZE, SIZE)))))
    return cfg


# Every loss merged into each model's CrossEntropyLoss dict (the way that
# failed before); the _delete_=True way, which always built, once per model
# with the block's own loss.
CASES = [(model, loss, False) for model in sorted(STOCK)
         for loss, _ in LOSS_LINES]
CASES += [(model, LOSS_LINES[0][0], True) for model in sorted(STOCK)]


@pytest.mark.parametrize(
    'model, loss, delete', CASES,
    ids=[f'{m}-{l}-{"delete" if d else "merged"}' for m, l, d in CASES])
def test_readme_dropin_trains_on_stock_config(model, loss, delete, workdir,
                                              monkeypatch):
    from mmengine.model import revert_sync_batchnorm
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    monkeypatch.chdir(workdir)  # the snippet's counts path is relative
    line = dict(LOSS_LINES)[loss]
    cfg = build_config(workdir, model, variant(SNIPPET, line, delete))
    loss_cfg = cfg.model.decode_head.loss_decode
    assert loss_cfg.type == loss
    # merged: the base's CrossEntropyLoss arguments reach the loss
    assert loss_cfg.get('use_sigmoid', None) is (None if delete else False)

    init_default_scope('mmseg')
    torch.manual_seed(0)
    segmentor = revert_sync_batchnorm(MODELS.build(cfg.model))  # as Runner
    assert type(segmentor.decode_head.loss_decode).__name__ == loss
    optim_wrapper = build_optim_wrapper(segmentor, cfg.optim_wrapper)
    head = segmentor.decode_head.conv_seg.weight
    before = head.detach().clone()
    segmentor.train()
    log_vars = segmentor.train_step(batch(), optim_wrapper)
    name = f'decode.{segmentor.decode_head.loss_decode.loss_name}'
    assert name in log_vars and torch.isfinite(log_vars[name]), log_vars
    assert not torch.equal(head.detach(), before), 'no optimizer step'


def test_readme_dropin_keeps_a_single_file_model(tmp_path, monkeypatch):
    """Appended to a config file that defines ``model`` itself (no
    ``_base_``), the block merges the loss into that model's loss dict:
    the file's class count, norm and other settings survive, and the model
    trains."""
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    num_classes = 7
    write_counts(tmp_path, num_classes)
    monkeypatch.chdir(tmp_path)
    cfg = build_config(tmp_path, 'deeplabv3plus', '')
    cfg.merge_from_dict(dict(model=dict(
        decode_head=dict(num_classes=num_classes),
        auxiliary_head=dict(num_classes=num_classes),
        backbone=dict(norm_cfg=dict(type='BN', requires_grad=True)))))
    single = tmp_path / 'single_file.py'
    single.write_text(cfg.pretty_text + '\n' + SNIPPET)
    assert '_base_' not in single.read_text()
    user = Config.fromfile(str(single))
    head = user.model.decode_head
    assert head.num_classes == num_classes
    assert user.model.auxiliary_head.num_classes == num_classes
    assert user.model.backbone.norm_cfg.type == 'BN'
    assert user.model.data_preprocessor.size == (SIZE, SIZE)
    assert head.loss_decode.type == LOSS_LINES[0][0]
    assert head.loss_decode.use_sigmoid is False  # merged, not rebound
    assert user.model.auxiliary_head.loss_decode.type == 'CrossEntropyLoss'

    init_default_scope('mmseg')
    torch.manual_seed(0)
    segmentor = revert_sync_batchnorm(MODELS.build(user.model))
    assert segmentor.decode_head.num_classes == num_classes
    optim_wrapper = build_optim_wrapper(segmentor, user.optim_wrapper)
    labels = batch()
    for sample in labels['data_samples']:
        sample.gt_sem_seg.data[sample.gt_sem_seg.data >= num_classes] = 0
    segmentor.train()
    log_vars = segmentor.train_step(labels, optim_wrapper)
    assert all(torch.isfinite(v) for v in log_vars.values())


@pytest.mark.parametrize(
    'base_loss, error, words',
    [
        (dict(use_sigmoid=True), ValueError, ['use_sigmoid=True']),
        (dict(use_mask=True), ValueError, ['use_mask=True']),
        # e.g. a base whose loss is OhemCrossEntropy
        (dict(type='OhemCrossEntropy', thres=0.9, min_kept=131072),
         TypeError, ['min_kept', 'thres']),
    ],
    ids=['use_sigmoid', 'use_mask', 'unknown'])
def test_contradicting_base_loss_fails_at_build_naming_fix(
        base_loss, error, words, tmp_path):
    """A base loss dict the loss cannot honour fails when the model is
    built, naming the loss, the argument and ``_delete_=True``; with
    ``_delete_=True`` the same configs build."""
    from mmengine.config import Config
    from mmseg.registry import MODELS
    base = dict(
        type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)
    base.update(base_loss)
    (tmp_path / 'base.py').write_text(f'loss_decode = {base!r}\n')
    for delete in (False, True):
        extra = '_delete_=True, ' if delete else ''
        (tmp_path / 'user.py').write_text(
            "_base_ = ['./base.py']\n"
            f"loss_decode = dict({extra}type='PATLoss', tau=2.0)\n")
        cfg = Config.fromfile(str(tmp_path / 'user.py')).loss_decode
        if delete:
            assert type(MODELS.build(cfg)).__name__ == 'PATLoss'
            continue
        with pytest.raises(error) as info:
            MODELS.build(cfg)
        message = str(info.value)
        for word in ['PATLoss', '_delete_=True'] + words:
            assert word in message, message


@pytest.mark.parametrize('field, value', [
    ('loss_weight', 0.4),
    ('loss_name', 'loss_ce'),
    ('avg_non_ignore', True),
    ('reduction', 'sum'),
    ('class_weight', [1.0, 2.0, 3.0]),
])
def test_merged_ce_arguments_keep_mmseg_meaning(field, value):
    """The CE arguments a merge brings keep their mmseg meaning: the loss
    equals the same loss built with them given directly, and they change
    the value (so they are not silently dropped)."""
    from mmengine.config import Config
    from mmseg.registry import MODELS
    base = Config(
        dict(loss=dict(type='CrossEntropyLoss', use_sigmoid=False,
                       use_mask=False, **{field: value})))
    base.merge_from_dict(dict(loss=dict(type='SoftmaxFocalLoss', gamma=2.0)))
    merged = MODELS.build(base.loss)
    explicit = MODELS.build(
        dict(type='SoftmaxFocalLoss', gamma=2.0, **{field: value}))
    plain = MODELS.build(dict(type='SoftmaxFocalLoss', gamma=2.0))
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 4)
    labels = torch.randint(0, 3, (2, 4, 4))
    labels[0, 0] = 255
    assert merged.loss_name == explicit.loss_name
    assert torch.equal(merged(logits, labels), explicit(logits, labels))
    if field == 'loss_name':
        assert merged.loss_name == value != plain.loss_name
    else:
        assert not torch.equal(merged(logits, labels), plain(logits, labels))
