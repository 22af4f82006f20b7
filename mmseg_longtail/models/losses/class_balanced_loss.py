"""Class-balanced loss (effective number of samples) and CB-Focal."""
from typing import Optional, Union

import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor

from .base import (LongTailLoss, PixelTargets, check_choice,
                   effective_number_weights, resolve_beta,
                   warn_if_near_uniform)
from .softmax_focal_loss import softmax_focal_pixel_loss


def sigmoid_focal_pixel_loss(cls_score: Tensor, target: PixelTargets,
                             gamma: float) -> Tensor:
    """Per-pixel ``sum_c (1 - q_c)^gamma (-log q_c)`` (N, H, W), ``q_c =
    sigmoid(z_c)`` for the true class and ``1 - sigmoid(z_c)`` otherwise,
    i.e. ``q_c = sigmoid(+-z_c)``; 0 at ignored pixels."""
    classes = torch.arange(cls_score.shape[1], device=cls_score.device)
    positive = target.index.unsqueeze(1) == classes.view(1, -1, 1, 1)
    log_q = F.logsigmoid(torch.where(positive, cls_score, -cls_score))
    loss = -log_q
    if gamma:
        loss = loss * (-torch.expm1(log_q)).pow(gamma)  # (1 - q)^gamma
    return loss.sum(1) * target.valid


@MODELS.register_module()
class ClassBalancedLoss(LongTailLoss):
    """Class-balanced cross-entropy / focal loss.

    `Class-Balanced Loss Based on Effective Number of Samples
    <https://arxiv.org/abs/1901.05555>`_ (Cui et al., CVPR 2019)::

        w_c = (1 - beta) / (1 - beta^n_c),  sum_c w_c = C
        l = w_y * CE(z, y)                        (base='ce')
        l = w_y * (1 - p_y)^gamma * CE(z, y)      (base='focal', CB-Focal)
        l = w_y * sum_c (1 - q_c)^gamma * (-log q_c)   (base='sigmoid_focal')

    ``base='focal'`` is the softmax focal loss (``p = softmax(z)``): the
    package's CB-Focal, a drop-in for a softmax segmentation head, and what
    the grid runs. The CB paper's CB-Focal is sigmoid-based:
    ``base='sigmoid_focal'`` scores each class as a binary problem,
    ``q_c = sigmoid(z_c)`` for the true class and ``1 - sigmoid(z_c)`` for
    the others, summed over the classes (the argmax prediction of the head
    is the same either way; the paper also initialises the classifier bias
    to ``-log((1 - pi) / pi)``, ``pi = 0.1``, which mmseg's ``conv_seg``
    does not).

    ``n_c`` are training-set counts (from the statistics file), fixed for
    the whole run; counts are not re-estimated per batch. Zero counts are
    clamped to 1. With pixel counts in the millions ``beta=0.9999`` makes
    the weights nearly equal; this is detected at build time (max/min weight
    ratio below 1.01) and a warning suggests a beta or ``count_type`` that
    separates the classes. ``class_weight``, if given, multiplies ``w``.
    ``reduction='mean'`` divides by the pixel count as the paper's code does
    (by the sum of ``class_weight`` only, if given), not by ``sum w_y``.

    Args:
        class_counts (list | str): per-class counts or statistics JSON.
        beta (float | str): in [0, 1); 0 gives uniform weights;
            ``'median'`` sets ``1 - 1/median(n_c)`` from the counts (the
            effective-number scale equals the median count), which separates
            the classes for pixel counts too. Default: 0.9999.
        base (str): 'ce', 'focal' (softmax) or 'sigmoid_focal' (the CB
            paper's). Default: 'ce'.
        gamma (float): focal exponent of the focal bases. Default: 2.0.
        loss_name (str): key in mmseg's loss dict, ``loss_*``.
        **kwargs: ``count_type``, ``reduction``, ``class_weight``,
            ``loss_weight``, ``avg_non_ignore`` of :class:`LongTailLoss`.
    """

    requires_counts = True

    def __init__(self,
                 class_counts=None,
                 beta: Union[float, str] = 0.9999,
                 base: str = 'ce',
                 gamma: float = 2.0,
                 loss_name: str = 'loss_cb',
                 **kwargs) -> None:
        super().__init__(
            class_counts=class_counts, loss_name=loss_name, **kwargs)
        self.base = check_choice(base, ('ce', 'focal', 'sigmoid_focal'),
                                 'base')
        if not gamma >= 0:
            raise ValueError(f'gamma must be >= 0, got {gamma}')
        self.gamma = float(gamma)
        self.beta = resolve_beta(beta, self.class_counts, 'beta')
        weights = effective_number_weights(self.class_counts, self.beta)
        warn_if_near_uniform(weights, self.class_counts, self.beta,
                             self.count_type, 'beta')
        self.register_class_buffer('cb_weights', weights)

    def class_weights(self, cls_score: Tensor) -> Optional[Tensor]:
        # the CB weights times the base's: class_weight, or the deferred
        # weights once deferred re-weighting is active (C values, no sync)
        cb = self.cb_weights.to(cls_score.dtype)
        extra = super().class_weights(cls_score)
        return cb if extra is None else cb * extra

    def mean_class_weights(self, cls_score: Tensor) -> Optional[Tensor]:
        # the CB weights are part of the loss value (the official code
        # divides by the number of samples): only class_weight (or deferred
        # weights) enters the denominator, as in mmseg
        return super().class_weights(cls_score)

    def pixel_loss(self, cls_score: Tensor, target: PixelTargets) -> Tensor:
        weights = self.class_weights(cls_score)
        if self.base == 'ce':
            return F.cross_entropy(
                cls_score,
                target.label,
                weight=weights,
                reduction='none',
                ignore_index=target.ignore_index)
        if self.base == 'focal':
            loss = softmax_focal_pixel_loss(cls_score, target.label,
                                            self.gamma, target.ignore_index)
        else:
            loss = sigmoid_focal_pixel_loss(cls_score, target, self.gamma)
        return loss * target.gather(weights)

    def extra_repr(self) -> str:
        return (f'beta={self.beta}, base={self.base!r}, gamma={self.gamma}, '
                + super().extra_repr())
