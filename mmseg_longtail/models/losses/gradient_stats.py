"""Accumulated per-class gradient statistics of the gradient-balancing
losses (EQLv2, Equalized Focal Loss).

Both losses treat each class as a binary (sigmoid) problem and steer it by
the ratio ``g_c = pos_grad_c / neg_grad_c`` of the gradient magnitudes the
loss has put so far on the class's positive logits (pixels of class c) and
on its negative logits (labelled pixels of other classes). Each loss gives
the per-logit magnitude ``|dl/dz|`` of its own per-pixel loss in closed form
(no autograd hook) and sums it over the labelled pixels of the batch;
:meth:`GradientStatsLoss.add_statistics` adds the sums to the buffers.

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
* **Speed**: both losses compute the per-pixel loss and its gradient on
  each logit in closed form under ``no_grad`` and hand them to
  :func:`closed_form_loss` (an autograd function whose backward pass
  scales the saved gradient in place), instead of recording a graph of
  some ten logits-sized intermediates; the statistics reuse the same
  buffers.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .base import LongTailLoss
from .online_stats import OnlineClassState, sum_over_processes
from .shifted_cross_entropy import INPLACE_MIN_NUMEL


class _ClosedFormLoss(torch.autograd.Function):
    """``loss`` (N, ...) as a function of ``z`` (N, C, ...) whose gradient
    ``d loss[n, ...] / d z[n, :, ...]`` is the given ``grad`` (N, C, ...)
    (each pixel's loss depends on its own logits only)."""

    @staticmethod
    def forward(ctx, z: Tensor, loss: Tensor, grad: Tensor,
                mask: Optional[Tensor]) -> Tensor:
        ctx.save_for_backward(grad, mask)
        ctx.in_place = grad.numel() >= INPLACE_MIN_NUMEL
        ctx.consumed = False
        return loss.clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_loss: Tensor):
        if ctx.consumed:
            raise RuntimeError(
                'EQLv2Loss / EqualizedFocalLoss turn their saved gradient '
                'into the logits\' gradient in place, so their graph can be '
                'back-propagated once only (retain_graph=True and a second '
                'backward are not supported for inputs of more than '
                f'{INPLACE_MIN_NUMEL} logits)')
        grad, mask = ctx.saved_tensors
        g = grad_loss if mask is None else grad_loss * mask
        g = g.unsqueeze(1)
        if ctx.in_place:
            ctx.consumed = True
            return grad.mul_(g), None, None, None
        return grad * g, None, None, None


def closed_form_loss(cls_score: Tensor,
                     loss: Tensor,
                     grad: Tensor,
                     mask: Optional[Tensor] = None) -> Tensor:
    """``loss`` (N, ...), computed without a graph, attached to
    ``cls_score`` (N, C, ...) with the per-logit gradient ``grad``
    (times ``mask`` (N, ...), the labelled pixels, when given: ``grad``
    may then hold anything finite at the other pixels): the backward pass
    returns ``grad * mask * d out / d loss`` (in place for large inputs,
    so once only)."""
    if mask is not None:
        mask = mask.to(grad.dtype)
    return _ClosedFormLoss.apply(cls_score, loss.detach(), grad.detach(),
                                 mask)


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
    def add_statistics(self, pos: Tensor, neg: Tensor) -> None:
        """Add (C,) batch sums of the positive / negative gradient
        magnitudes (summed over the processes first; training mode
        only)."""
        if not self.training:
            return
        stats = sum_over_processes(torch.stack([pos, neg]).double())
        num_classes = stats.shape[1]
        self._sized_state('pos_grad', num_classes, pos.device).add_(stats[0])
        self._sized_state('neg_grad', num_classes, pos.device).add_(stats[1])
