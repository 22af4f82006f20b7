"""Accumulated per-class gradient statistics of the gradient-balancing
losses (EQLv2, Equalized Focal Loss).

Both losses treat each class as a binary (sigmoid) problem and steer it by
the ratio ``g_c = pos_grad_c / neg_grad_c`` of the gradient magnitudes the
loss has put so far on the class's positive logits (pixels of class c) and
on its negative logits (labelled pixels of other classes). Each loss gives
the per-logit magnitude ``|dl/dz|`` of its own per-pixel loss in closed form
(no autograd hook); :meth:`GradientStatsLoss.accumulate` sums it over the
labelled pixels of the batch.

* **Buffers** ``pos_grad`` and ``neg_grad``: float64, one entry per class,
  persistent and lazily sized (:class:`.online_stats.OnlineClassState`):
  checkpoints save them and ``--resume`` continues the statistics; empty
  until the first forward (or ``check_num_classes``), and loading a
  ``state_dict`` before that gives them the saved size.
* **Updates** happen in training mode only (``loss.train()``, which the
  runner sets); a loss in eval mode reads the statistics without changing
  them. The update of one forward is used from the next forward on (the
  current one is weighted with the statistics before it, as the papers'
  code does). Ignored pixels add nothing.
* **Several processes**: when ``torch.distributed`` is initialised with
  more than one process, each forward all-reduces (sums) the batch's
  statistics before adding them, so every process holds the statistics of
  the global batch. All processes must then call the loss equally often
  (mmseg's heads do: one call per iteration).
* The ratio of a class with ``neg_grad = 0`` (no statistics yet) is taken
  as 1 with ``seen=False``; the losses turn that into unit weights.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

from .base import LongTailLoss, PixelTargets
from .online_stats import OnlineClassState, sum_over_processes


def binary_targets(cls_score: Tensor,
                   target: PixelTargets) -> Tuple[Tensor, Tensor, Tensor]:
    """Inputs of a per-class sigmoid loss.

    Returns:
        ``z`` (N, C, H, W): the logits, 0 at ignored pixels (so that inf /
        NaN there reach neither the value nor the gradient);
        ``positive`` (N, C, H, W) bool: the one-hot labels, all False at
        ignored pixels; ``valid`` (N, 1, H, W) bool.
    """
    valid = target.valid.unsqueeze(1)
    z = cls_score.masked_fill(~valid, 0.0)
    classes = torch.arange(
        cls_score.shape[1], device=cls_score.device).view(
            (1, -1) + (1, ) * (cls_score.dim() - 2))
    positive = target.index.unsqueeze(1) == classes
    return z, positive, valid


class GradientStatsLoss(OnlineClassState, LongTailLoss):
    """:class:`LongTailLoss` with the buffers ``pos_grad`` / ``neg_grad``
    (see the module docstring)."""

    def __init__(self, loss_name: str, **kwargs) -> None:
        super().__init__(loss_name=loss_name, **kwargs)
        self.register_class_state('pos_grad', torch.float64)
        self.register_class_state('neg_grad', torch.float64)

    def gradient_ratio(self, cls_score: Tensor) -> Tuple[Tensor, Tensor]:
        """``(g, seen)``, (C,) each: ``g_c = pos_grad_c / neg_grad_c`` in
        the logits' dtype where ``seen`` (``neg_grad_c > 0``), 1 elsewhere.
        """
        pos = self.class_state('pos_grad', cls_score)
        neg = self.class_state('neg_grad', cls_score)
        seen = neg > 0
        ratio = torch.where(seen, pos / torch.where(seen, neg, 1.0), 1.0)
        return ratio.to(cls_score.dtype), seen

    @torch.no_grad()
    def accumulate(self, grad: Tensor, positive: Tensor, valid: Tensor,
                   pos_scale: Optional[Tensor] = None,
                   neg_scale: Optional[Tensor] = None) -> None:
        """Add the batch's gradient magnitudes (training mode only).

        Args:
            grad: (N, C, H, W) ``|dl/dz|`` of the per-pixel loss, or a
                factor of it whose per-class rest is ``pos_scale`` /
                ``neg_scale``.
            positive: (N, C, H, W) bool one-hot labels.
            valid: (N, 1, H, W) bool mask of the labelled pixels.
            pos_scale, neg_scale: optional (C,) factors of the positive /
                negative magnitudes.
        """
        if not self.training:
            return
        dims = (0, ) + tuple(range(2, grad.dim()))
        grad = torch.where(valid, grad.detach(), 0.0)
        pos = (grad * positive).sum(dims)
        stats = torch.stack([pos, grad.sum(dims) - pos]).double()
        if pos_scale is not None:
            stats[0] *= pos_scale
        if neg_scale is not None:
            stats[1] *= neg_scale
        stats = sum_over_processes(stats)
        self.class_state('pos_grad', grad).add_(stats[0])
        self.class_state('neg_grad', grad).add_(stats[1])
