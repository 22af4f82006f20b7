"""LDAM loss with optional deferred re-weighting (DRW)."""
from typing import Optional, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor

from .base import (LongTailLoss, PixelTargets, effective_number_weights,
                   resolve_beta, warn_if_near_uniform)


@MODELS.register_module()
class LDAMLoss(LongTailLoss):
    """Label-Distribution-Aware Margin loss.

    `Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss
    <https://arxiv.org/abs/1906.07413>`_ (Cao et al., NeurIPS 2019)::

        Delta_c = max_m * (n_min / n_c)^(1/4)
        l = CE(s * (z - Delta_y * onehot(y)), y)

    i.e. ``Delta_c = K / n_c^(1/4)`` with ``K`` such that the rarest class
    gets ``max_m``. Zero counts are clamped to 1.

    ``s`` is the paper's scale for *cosine* logits in [-1, 1] (s=30). mmseg's
    ``conv_seg`` gives unbounded raw logits, for which ``s=30`` makes the
    softmax very sharp: tune ``s`` (e.g. 1) and ``max_m`` (in logit units)
    to the head you use.

    Deferred re-weighting (DRW): from iteration ``drw_start_iter`` on, the
    loss is multiplied per class by the class-balanced weights
    ``(1 - b) / (1 - b^n_c)`` (``b = drw_beta``, normalised to sum C). This
    is the package's one deferred re-weighting
    (:mod:`.reweighting`, installed with ``set_deferred_weights``, as
    ``DeferredReweightHook`` does for any loss): the iteration is read from
    mmengine's message hub (runtime info ``'iter'``, set by the runner's
    ``RuntimeInfoHook`` before every training iteration and restored on
    ``--resume``), so the switch is right after resuming. Outside a runner
    (no ``'iter'`` info) DRW is off. Like the DRW weights
    of the paper's code (``F.cross_entropy(weight=...)``) and mmseg's
    ``class_weight``, they also weight the denominator of the mean.

    Args:
        class_counts (list | str): per-class counts or statistics JSON.
        max_m (float): largest margin (rarest class). Default: 0.5.
        s (float): logit scale. Default: 30.0.
        drw_start_iter (int, optional): first iteration of DRW; None: off.
        drw_beta (float | str): beta of the DRW weights; ``'median'`` as
            in :class:`ClassBalancedLoss`. Default: 0.9999.
        loss_name (str): key in mmseg's loss dict, ``loss_*``.
        **kwargs: ``count_type``, ``reduction``, ``class_weight``,
            ``loss_weight``, ``avg_non_ignore`` of :class:`LongTailLoss`.
    """

    requires_counts = True

    def __init__(self,
                 class_counts=None,
                 max_m: float = 0.5,
                 s: float = 30.0,
                 drw_start_iter: Optional[int] = None,
                 drw_beta: Union[float, str] = 0.9999,
                 loss_name: str = 'loss_ldam',
                 **kwargs) -> None:
        super().__init__(
            class_counts=class_counts, loss_name=loss_name, **kwargs)
        if not max_m >= 0:
            raise ValueError(f'max_m must be >= 0, got {max_m}')
        if not s > 0:
            raise ValueError(f's must be > 0, got {s}')
        self.max_m = float(max_m)
        self.s = float(s)
        self.drw_start_iter = drw_start_iter
        self.drw_beta = resolve_beta(drw_beta, self.class_counts,
                                     'drw_beta')
        n = np.maximum(self.class_counts, 1.0)
        self.register_class_buffer('margins',
                                   self.max_m * (n.min() / n)**0.25)
        drw = effective_number_weights(self.class_counts, self.drw_beta,
                                       'drw_beta')
        if drw_start_iter is not None:
            warn_if_near_uniform(drw, self.class_counts, self.drw_beta,
                                 self.count_type, 'drw_beta')
            self.set_deferred_weights(drw_start_iter, drw,
                                      field='drw_start_iter')
        self._cb_drw = drw

    @property
    def drw_weights(self) -> Tensor:
        """The DRW weights (class-balanced weights of ``drw_beta`` times
        ``class_weight``)."""
        if self.deferred_weight_tensor is not None:
            return self.deferred_weight_tensor
        weights = self._cb_drw
        if self.class_weight is not None:
            weights = weights * np.asarray(self.class_weight)
        return torch.as_tensor(weights, dtype=torch.float32)

    def drw_active(self) -> bool:
        """Whether DRW applies now (python int from the message hub: no
        device read)."""
        return self.deferred_active()

    def pixel_loss(self, cls_score: Tensor, target: PixelTargets) -> Tensor:
        # With p = softmax(s z) and ce = -log p_y, the margin changes only
        # the target logit, so exactly
        #   CE(s (z - Delta_y e_y)) = ce + s Delta_y
        #                             + log(1 - p_y + p_y exp(-s Delta_y)),
        # which needs no margin-shifted copy of the logits (and none of the
        # logits at all when s = 1); both terms of the log are >= 0 and
        # 1 - p_y = -expm1(-ce) keeps it accurate for confident pixels.
        scaled = cls_score * self.s if self.s != 1 else cls_score
        ce = F.cross_entropy(
            scaled,
            target.label,
            reduction='none',
            ignore_index=target.ignore_index)
        loss = ce
        if self.max_m > 0:  # max_m = 0: plain CE(s z), bit for bit
            # 0 at ignored pixels, whose loss stays 0
            margin = target.gather(self.margins.to(ce.dtype) * self.s)
            shifted = ce + margin  # -log(p_y exp(-s Delta_y))
            # 1 - p_y + p_y exp(-s Delta_y), both terms >= 0
            rest = shifted.neg().exp_() - torch.expm1(ce.neg())
            loss = shifted.add_(torch.log(rest))
        weights = self.class_weights(cls_score)
        if weights is not None:
            loss = loss * target.gather(weights)
        return loss

    def extra_repr(self) -> str:
        return (f'max_m={self.max_m}, s={self.s}, '
                f'drw_start_iter={self.drw_start_iter}, '
                f'drw_beta={self.drw_beta}, ' + super().extra_repr())
