"""CeCo: the center collapse regulariser (training-only branch)."""
import math
from typing import Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor

from ...utils import class_prior, load_class_counts
from ..losses.base import PixelTargets, check_label_values

RESIZE_MODES = ('label', 'feature')


def simplex_etf(dim: int, num_classes: int, seed: int = 0) -> Tensor:
    """A fixed simplex equiangular tight frame, shape (dim, num_classes).

    ``W = sqrt(C / (C - 1)) * U (I - 11^T / C)`` with ``U`` a (dim, C)
    matrix of orthonormal columns drawn from a CPU ``torch.Generator``
    seeded with ``seed`` (QR of a Gaussian matrix, in float64): the same
    seed gives the same ``W`` on every rank and machine. Columns have unit
    norm and pairwise cosine ``-1 / (C - 1)``.

    Raises:
        ValueError: if ``num_classes < 2`` or ``dim < num_classes`` (``U``
            needs ``C`` orthonormal columns).
    """
    if num_classes < 2:
        raise ValueError(f'CeCo needs num_classes >= 2, got {num_classes}')
    if dim < num_classes:
        raise ValueError(
            f'ceco_cfg.channels={dim} must be >= num_classes={num_classes} '
            '(the ETF needs one orthonormal direction per class)')
    gen = torch.Generator(device='cpu').manual_seed(int(seed))
    gauss = torch.randn(dim, num_classes, generator=gen, dtype=torch.float64)
    u, _ = torch.linalg.qr(gauss)  # reduced QR: (dim, C), U^T U = I
    centering = torch.eye(num_classes, dtype=torch.float64) - 1. / num_classes
    w = math.sqrt(num_classes / (num_classes - 1)) * (u @ centering)
    return w.float()


class CeCoBranch(BaseModule):
    """Center collapse regulariser of `Understanding Imbalanced Semantic
    Segmentation Through Neural Collapse <https://arxiv.org/abs/2301.01100>`_
    (Zhong et al., CVPR 2023).

    From the pre-classifier feature of a decode head: reduce it (1x1 conv +
    norm), average the pixels of each class present in the batch into class
    centers ``m_c`` (ignored pixels excluded), project them with an MLP
    (linear, ReLU, linear; the last linear lets the normalised embedding
    point along any ETF direction, which a ReLU output cannot, being
    non-negative), L2-normalise, and classify them with a FIXED simplex ETF
    ``W`` (:func:`simplex_etf`) scaled by ``s``. The loss is the
    logit-adjusted cross-entropy of each present center against its own
    class,

    .. math::

        L = \\lambda \\frac{1}{|P|} \\sum_{c \\in P}
            \\mathrm{CE}\\big(s\\,W^T \\hat{m}_c + \\tau \\log \\pi,\\ c\\big),
        \\quad \\hat{m}_c = \\frac{g(m_c)}{\\lVert g(m_c) \\rVert},

    with ``P`` the classes present, ``pi`` the class prior from IMAGE
    counts (zero counts clamped to 1, so ``log(pi)`` stays finite) and
    ``lambda`` the loss weight. Per-class sums use ``index_add`` (no loop
    over classes); absent classes are masked out of the mean, and a batch
    with no labelled pixel gives 0 (no host sync, never NaN).

    Args:
        in_channels (int): channels of the head's pre-classifier feature.
        num_classes (int): C.
        class_counts (list | str): per-class counts or the path of a class
            statistics JSON (``tools/analysis_tools/class_stats.py``).
            Required.
        count_type (str): which counts of the JSON: ``'image'`` (default,
            as in the paper) or ``'pixel'``.
        channels (int): feature/ETF dimension d (>= C). Default: 256.
        scale (float): ``s``. Default: 5.
        loss_weight (float): ``lambda``. Default: 0.8.
        tau (float): logit adjustment strength. Default: 1.
        seed (int): seed of the ETF. Default: 0.
        resize_mode (str): ``'label'``: nearest-downsample labels to the
            feature size (default, cheap); ``'feature'``: bilinear-upsample
            the reduced features to the label size (keeps tiny objects).
        ignore_index (int): label excluded from the centers. Values outside
            ``0..C-1`` are excluded as well.
        align_corners (bool): for ``resize_mode='feature'``.
        norm_cfg (dict | None): norm of the reduction. Default: BN.
        loss_name (str): key in the loss dict. Default: ``'loss_ceco'``.
        freeze (bool): train as the official code (GPaCo/Seg,
            ``uper_head_ceco.py``) does: the reduction (conv and norm) and
            the projection keep their initial weights
            (``requires_grad=False``, like the ETF), so ``loss_ceco`` only
            shapes the head's features through a fixed random map. Default:
            False (this package's original behaviour, trainable branch;
            docs/heads.md says why).
    """

    def __init__(self,
                 in_channels: int,
                 num_classes: int,
                 class_counts: Union[str, Sequence[float], None] = None,
                 count_type: str = 'image',
                 channels: int = 256,
                 scale: float = 5.0,
                 loss_weight: float = 0.8,
                 tau: float = 1.0,
                 seed: int = 0,
                 resize_mode: str = 'label',
                 ignore_index: int = 255,
                 align_corners: bool = False,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 loss_name: str = 'loss_ceco',
                 freeze: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg)
        if class_counts is None:
            raise ValueError(
                'ceco_cfg.class_counts is required: the path of the class '
                'statistics JSON of the training split (write it with '
                'tools/analysis_tools/class_stats.py) or a list of '
                'per-class image counts')
        if resize_mode not in RESIZE_MODES:
            raise ValueError(f'ceco_cfg.resize_mode must be one of '
                             f'{RESIZE_MODES}, got {resize_mode!r}')
        if not loss_name.startswith('loss_'):
            raise ValueError(f'ceco_cfg.loss_name must start with "loss_" '
                             f'(else mmseg leaves it out of the total), '
                             f'got {loss_name!r}')
        if scale <= 0:
            raise ValueError(f'ceco_cfg.scale must be > 0, got {scale}')
        counts = load_class_counts(class_counts, num_classes, kind=count_type,
                                   field='ceco_cfg.class_counts')
        self.num_classes = num_classes
        self.scale = float(scale)
        self.loss_weight = float(loss_weight)
        self.tau = float(tau)
        self.resize_mode = resize_mode
        self.ignore_index = ignore_index
        self.align_corners = align_corners
        self._loss_name = loss_name

        self.reduce = ConvModule(in_channels, channels, 1, norm_cfg=norm_cfg,
                                 act_cfg=None)
        self.proj = nn.Sequential(
            nn.Linear(channels, channels), nn.ReLU(inplace=True),
            nn.Linear(channels, channels))
        self.freeze = bool(freeze)
        if self.freeze:
            # the official training: only the head's features learn from
            # loss_ceco (the norm still normalises with batch statistics:
            # the branch runs in training only, its running statistics are
            # never used)
            for param in [*self.reduce.parameters(),
                          *self.proj.parameters()]:
                param.requires_grad_(False)
        # Persistent: the checkpoint carries the frame the MLP was trained to.
        self.register_buffer('etf', simplex_etf(channels, num_classes, seed))
        # Not persistent: the config's counts are the source of truth.
        log_prior = torch.from_numpy(class_prior(counts)).log().float()
        self.register_buffer('log_prior', log_prior, persistent=False)

    @property
    def loss_name(self) -> str:
        return self._loss_name

    def class_centers(self, feat: Tensor, seg_label: Tensor):
        """Mean reduced feature of every class in the batch.

        Args:
            feat: pre-classifier feature (N, in_channels, h, w).
            seg_label: labels (N, 1, H, W) or (N, H, W).

        Returns:
            centers (C, d) float32 (zero rows for absent classes) and
            present (C,) bool.
        """
        z = self.reduce(feat)
        if seg_label.dim() == 3:
            seg_label = seg_label.unsqueeze(1)
        if self.resize_mode == 'feature':
            z = F.interpolate(z, size=seg_label.shape[2:], mode='bilinear',
                              align_corners=self.align_corners)
        elif seg_label.shape[2:] != z.shape[2:]:
            # float is exact for label ids; nearest keeps them integral
            seg_label = F.interpolate(seg_label.float(), size=z.shape[2:],
                                      mode='nearest')
        num_classes, dim = self.num_classes, z.shape[1]
        # float32 sums: summing many pixels in fp16 (AMP) would overflow
        z = z.float().permute(0, 2, 3, 1).reshape(-1, dim)
        label = seg_label.reshape(-1).long()
        # values neither a class id nor ignore_index are refused, as by
        # every loss of the plugin (a device-side assert off CPU)
        check_label_values(type(self).__name__,
                           PixelTargets(label, self.ignore_index,
                                        num_classes))
        valid = ((label != self.ignore_index) & (label >= 0)
                 & (label < num_classes))
        # Excluded pixels go to an extra bin C that is dropped afterwards;
        # this keeps shapes static (no boolean indexing, no host sync).
        index = torch.where(valid, label, torch.full_like(label, num_classes))
        sums = z.new_zeros(num_classes + 1, dim).index_add_(0, index, z)
        counts = z.new_zeros(num_classes + 1).index_add_(
            0, index, z.new_ones(index.shape[0]))
        counts = counts[:num_classes]
        centers = sums[:num_classes] / counts.clamp(min=1.).unsqueeze(1)
        return centers, counts > 0

    def center_logits(self, centers: Tensor) -> Tensor:
        """Logit-adjusted ETF logits of the centers, shape (C, C)."""
        emb = F.normalize(self.proj(centers), dim=1)
        return (self.scale * emb @ self.etf.to(emb.dtype) +
                self.tau * self.log_prior.to(emb.dtype))

    def forward(self, feat: Tensor, seg_label: Tensor) -> Tensor:
        """The weighted CeCo loss (a scalar)."""
        centers, present = self.class_centers(feat, seg_label)
        logits = self.center_logits(centers)
        target = torch.arange(self.num_classes, device=logits.device)
        ce = F.cross_entropy(logits.float(), target, reduction='none')
        present = present.float()
        loss = (ce * present).sum() / present.sum().clamp(min=1.)
        return self.loss_weight * loss
