"""Helpers shared by the decode-head tests (tiny shapes, fixed seeds)."""
from typing import List, Sequence, Tuple

import torch
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

# As the runner does (default_scope='mmseg'): builders inside mmseg modules
# (SegDataPreProcessor, UNet's InterpConv) look names up in the default
# scope.
init_default_scope('mmseg')


def make_levels(batch: int, channels: Sequence[int], size: Tuple[int, int],
                seed: int = 0) -> List[torch.Tensor]:
    """Random fine-to-coarse features, level i at ceil(size / 2**i) (the
    sizes a stride-2 conv backbone gives for odd inputs)."""
    g = torch.Generator().manual_seed(seed)
    h, w = size
    levels = []
    for c in channels:
        levels.append(torch.randn(batch, c, h, w, generator=g))
        h, w = (h + 1) // 2, (w + 1) // 2
    return levels


def make_samples(labels: torch.Tensor) -> List[SegDataSample]:
    """SegDataSamples holding ``labels`` (N, H, W) as gt_sem_seg."""
    samples = []
    for label in labels:
        h, w = label.shape
        sample = SegDataSample(
            metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                          pad_shape=(h, w)))
        sample.gt_sem_seg = PixelData(data=label[None].long())
        samples.append(sample)
    return samples


def random_labels(batch: int, size: Tuple[int, int], num_classes: int,
                  seed: int = 0, ignore_frac: float = 0.1,
                  ignore_index: int = 255) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, num_classes, (batch, *size), generator=g)
    ignore = torch.rand(batch, *size, generator=g) < ignore_frac
    return labels.masked_fill(ignore, ignore_index)


def params_without_grad(module: torch.nn.Module,
                        nonzero: bool = True) -> List[str]:
    """Trainable parameters that backward did not reach (``.grad`` missing
    or, with ``nonzero``, all zero)."""
    return [
        name for name, p in module.named_parameters()
        if p.requires_grad and (p.grad is None or (
            nonzero and not p.grad.abs().sum() > 0))
    ]


def total_loss(losses: dict) -> torch.Tensor:
    return sum(v for k, v in losses.items() if 'loss' in k)


def mmseg_ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """mmseg's default CrossEntropyLoss (avg_non_ignore=False): the sum over
    labelled pixels divided by ALL pixels."""
    return torch.nn.functional.cross_entropy(
        logits, labels, ignore_index=255, reduction='sum') / labels.numel()


IN_CHANNELS = [4, 8, 16, 32]


def build_head(head_type: str, **kwargs):
    """A tiny multi-level head on IN_CHANNELS (C=3, BN, no dropout)."""
    from mmseg.registry import MODELS
    cfg = dict(
        type=head_type,
        in_channels=IN_CHANNELS,
        in_index=[0, 1, 2, 3],
        channels=4,
        num_classes=3,
        dropout_ratio=0.0,
        norm_cfg=dict(type='BN'))
    cfg.update(kwargs)
    torch.manual_seed(0)
    return MODELS.build(cfg)
