"""Equalization Loss v2 (gradient-balanced sigmoid cross-entropy)."""
import math
from typing import Tuple

import torch
from mmseg.registry import MODELS
from torch import Tensor

from .base import PixelTargets, per_class
from .gradient_stats import GradientStatsLoss, closed_form_loss


@MODELS.register_module()
class EQLv2Loss(GradientStatsLoss):
    """Equalization Loss v2 at pixel level.

    `Equalization Loss v2: A New Gradient Balance Approach for Long-tailed
    Object Detection <https://arxiv.org/abs/2012.08548>`_ (Tan et al., CVPR
    2021). Each class is a binary problem on ``p_c = sigmoid(z_c)`` with
    one-hot targets ``y``; its positive and negative terms are re-weighted
    from the class's accumulated gradient ratio::

        l = sum_c w_c(y_c) * BCE(z_c, y_c)
        g_c = pos_grad_c / neg_grad_c
        f(g) = 1 / (1 + exp(-gamma (g - mu)))
        w_c(0) = f(g_c),   w_c(1) = 1 + alpha (1 - f(g_c))

    A class whose positives receive little gradient relative to its
    negatives (a rare class: ``g_c`` small) gets its negative gradients
    suppressed and its positive ones boosted. ``pos_grad_c`` /
    ``neg_grad_c`` accumulate ``w |p_c - y_c|``, the magnitude of the
    re-weighted loss's gradient on each logit (the paper's statistic,
    computed in closed form), over the labelled pixels of class c / of the
    other classes; see :mod:`.gradient_stats` for the buffers (saved in
    checkpoints, all-reduced over processes, updated in training mode
    only). Before any statistics exist both weights are 1 (plain sigmoid
    BCE; mmdet's implementation starts from a ratio of 100, to the same
    effect).

    ``class_weight`` multiplies the loss of a pixel by its class's weight
    (not part of the statistics); 'mean' divides by the pixel count (mmseg's
    convention; the paper's code divides by the number of samples).

    Args:
        gamma (float): slope of the mapping ``f``, >= 0. Default: 12.0.
        mu (float): centre of ``f``. Default: 0.8.
        alpha (float): positive boost, >= 0. Default: 4.0.
        loss_name (str): key in mmseg's loss dict, ``loss_*``.
        **kwargs: ``reduction``, ``class_weight``, ``loss_weight``,
            ``avg_non_ignore`` of :class:`LongTailLoss`.
    """

    def __init__(self,
                 gamma: float = 12.0,
                 mu: float = 0.8,
                 alpha: float = 4.0,
                 loss_name: str = 'loss_eqlv2',
                 **kwargs) -> None:
        super().__init__(loss_name=loss_name, **kwargs)
        for field, value in (('gamma', gamma), ('alpha', alpha)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f'{field} must be finite and >= 0, got '
                                 f'{value}')
        if not math.isfinite(mu):
            raise ValueError(f'mu must be finite, got {mu}')
        self.gamma, self.mu, self.alpha = float(gamma), float(mu), float(alpha)

    def balance_weights(self, cls_score: Tensor) -> Tuple[Tensor, Tensor]:
        """``(pos_w, neg_w)``, (C,) each, from the current statistics."""
        ratio, seen = self.gradient_ratio(cls_score)
        neg_w = torch.where(seen, torch.sigmoid(self.gamma *
                                                (ratio - self.mu)), 1.0)
        return 1.0 + self.alpha * (1.0 - neg_w), neg_w

    def pixel_loss(self, cls_score: Tensor, target: PixelTargets) -> Tensor:
        pos_w, neg_w = self.balance_weights(cls_score)
        # no autocast: the statistics' batched product stays in fp32
        with torch.no_grad(), torch.autocast(cls_score.device.type,
                                             enabled=False):
            loss, grad = self.closed_form(cls_score, target, pos_w, neg_w)
        loss = closed_form_loss(cls_score, loss, grad, target.valid)
        class_weight = self.class_weights(cls_score)
        if class_weight is not None:
            loss = loss * target.gather(class_weight)
        return loss

    def closed_form(self, cls_score: Tensor, target: PixelTargets,
                    pos_w: Tensor, neg_w: Tensor) -> Tuple[Tensor, Tensor]:
        """Per-pixel loss (N, ...) and its gradient on each logit, with two
        logits-sized buffers, and the statistics of a training forward.

        ``u = -z`` at the positive logit, ``z`` elsewhere (0 at ignored
        pixels), ``BCE(z, y) = softplus(u)``; ``d l / d z_c = w_c(y_c)
        sigmoid(u_c)`` at the negatives and ``-w_c(1) sigmoid(u_c)`` at the
        positive. The positive logit of each pixel is handled by gather /
        scatter on (N, 1, ...) tensors, the negatives by one broadcast
        product with ``neg_w``."""
        valid = target.valid.unsqueeze(1)
        index = torch.where(target.valid, target.label, 0).unsqueeze(1)
        u = torch.where(valid, cls_score.detach(), 0.0).contiguous()
        u.scatter_(1, index, u.gather(1, index).neg_())
        # |p - y| = sigmoid(u): the statistic and the gradient (0.5 at
        # ignored pixels, where the backward pass masks it)
        grad = torch.sigmoid(u)
        grad_pos = grad.gather(1, index)
        if self.training:  # w |p - y|, w factored out
            n, c = cls_score.shape[:2]
            pos = grad.new_zeros(c + 1, dtype=torch.float64)
            pos.index_add_(0, target.index.reshape(-1),
                           grad_pos.reshape(-1).double())
            pos = pos[:c]
            # sum over the labelled pixels: one batched product with the
            # mask (no masked copy)
            mask = target.valid.to(grad.dtype).view(n, -1, 1)
            total = torch.bmm(grad.view(n, c, -1), mask).sum((0, 2))
            self.add_statistics(pos * pos_w.double(),
                                (total.double() - pos) * neg_w.double())
        neg_w = per_class(neg_w, u)
        pos_w = target.gather(pos_w.to(u.dtype)).unsqueeze(1)
        # loss: softplus(u) weighted, summed over the classes
        # F.softplus, written into u's buffer
        sp = torch.ops.aten.softplus.out(u, 1, 20, out=u)
        sp_pos = sp.gather(1, index)
        sp.mul_(neg_w).scatter_(1, index, sp_pos * pos_w)
        loss = sp.sum(1) * target.valid
        del sp, u
        # gradient: w sigmoid(u) times the sign of du / dz
        grad.mul_(neg_w).scatter_(1, index, grad_pos * pos_w.neg())
        return loss, grad

    def extra_repr(self) -> str:
        return (f'gamma={self.gamma}, mu={self.mu}, alpha={self.alpha}, ' +
                super().extra_repr())
