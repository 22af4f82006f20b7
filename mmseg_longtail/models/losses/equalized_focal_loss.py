"""Equalized Focal Loss (sigmoid focal loss with class-specific focusing)."""
import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor

from .base import PixelTargets, per_class
from .gradient_stats import GradientStatsLoss, closed_form_loss


@MODELS.register_module()
class EqualizedFocalLoss(GradientStatsLoss):
    """Equalized Focal Loss at pixel level.

    `Equalized Focal Loss for Dense Long-Tailed Object Detection
    <https://arxiv.org/abs/2201.02593>`_ (Li et al., CVPR 2022). The
    sigmoid focal loss of each class, with a focusing factor that grows as
    the class's accumulated gradient ratio falls::

        q_c = sigmoid(z_c) if y_c = 1 else 1 - sigmoid(z_c)
        g_c = clamp(pos_grad_c / neg_grad_c, 0, 1)
        gamma_c = gamma_b + s (1 - g_c)
        l = sum_c alpha_t (gamma_c / gamma_b) (1 - q_c)^gamma_c (-log q_c)

    ``alpha_t = alpha`` for the positive logit, ``1 - alpha`` for the
    negatives (``alpha=None``: 1 for both). ``gamma_c / gamma_b`` is the
    paper's weighting factor, which restores the loss of the rare classes
    that the larger focusing factor would shrink. The statistics are the
    magnitudes of this loss's own gradient on each logit, as the authors'
    code collects them (there with a backward hook, here in closed form)::

        |dl/dz_c| = alpha_t (gamma_c / gamma_b) (1 - q)^gamma_c
                    ((1 - q) - gamma_c q log q)

    summed over the labelled pixels of class c (``pos_grad_c``) and of the
    other classes (``neg_grad_c``); see :mod:`.gradient_stats` for the
    buffers (saved in checkpoints, all-reduced over processes, updated in
    training mode only). Before any statistics exist ``g_c = 1``: the plain
    sigmoid focal loss with ``gamma_b``.

    ``class_weight`` multiplies the loss of a pixel by its class's weight
    (not part of the statistics); 'mean' divides by the pixel count, which
    with ``avg_non_ignore=True`` is the paper's normalisation by the number
    of positives (one per labelled pixel).

    Args:
        gamma_b (float): class-agnostic focusing factor, > 0. Default: 2.0.
        s (float): scale of the class-specific part, >= 0. Default: 8.0.
        alpha (float, optional): balance of positives and negatives, in
            [0, 1], or None for none. Default: 0.25.
        loss_name (str): key in mmseg's loss dict, ``loss_*``.
        **kwargs: ``reduction``, ``class_weight``, ``loss_weight``,
            ``avg_non_ignore`` of :class:`LongTailLoss`.
    """

    def __init__(self,
                 gamma_b: float = 2.0,
                 s: float = 8.0,
                 alpha: Optional[float] = 0.25,
                 loss_name: str = 'loss_efl',
                 **kwargs) -> None:
        super().__init__(loss_name=loss_name, **kwargs)
        if not (math.isfinite(gamma_b) and gamma_b > 0):
            raise ValueError(f'gamma_b must be finite and > 0, got {gamma_b}')
        if not (math.isfinite(s) and s >= 0):
            raise ValueError(f's must be finite and >= 0, got {s}')
        if alpha is not None and not 0 <= alpha <= 1:
            raise ValueError(f'alpha must lie in [0, 1] or be None, got '
                             f'{alpha}')
        self.gamma_b, self.s = float(gamma_b), float(s)
        self.alpha = None if alpha is None else float(alpha)

    def focusing(self, cls_score: Tensor) -> Tensor:
        """``gamma_c`` (C,) from the current statistics."""
        ratio, _ = self.gradient_ratio(cls_score)
        return self.gamma_b + self.s * (1.0 - ratio.clamp(0.0, 1.0))

    def pixel_loss(self, cls_score: Tensor, target: PixelTargets) -> Tensor:
        gamma = self.focusing(cls_score)
        # no autocast: the statistics' batched product stays in fp32
        with torch.no_grad(), torch.autocast(cls_score.device.type,
                                             enabled=False):
            loss, grad = self.closed_form(cls_score, target, gamma)
        loss = closed_form_loss(cls_score, loss, grad, target.valid)
        class_weight = self.class_weights(cls_score)
        if class_weight is not None:
            loss = loss * target.gather(class_weight)
        return loss

    def closed_form(self, cls_score: Tensor, target: PixelTargets,
                    gamma: Tensor) -> Tuple[Tensor, Tensor]:
        """Per-pixel loss (N, ...) and its gradient on each logit, and the
        statistics of a training forward, without an autograd graph.

        ``u = z`` at the positive logit, ``-z`` elsewhere (0 at ignored
        pixels), ``q = sigmoid(u)``, ``m = (1 - q)^gamma_c``; with
        ``G = a m ((1 - q) - gamma_c q log q)`` the magnitude of the class
        docstring, ``d l / d z = -G`` at the positive and ``G`` at the
        negatives. The per-class factors ``a = alpha_t gamma_c / gamma_b``
        of the negatives are one broadcast product, those of the positive
        logit gather / scatter on (N, 1, ...) tensors."""
        n, c = cls_score.shape[:2]
        index = torch.where(target.valid, target.label, 0).unsqueeze(1)
        valid = target.valid.unsqueeze(1)
        u = torch.where(valid, cls_score.detach(), 0.0).contiguous()
        u.neg_().scatter_(1, index, u.gather(1, index).neg_())
        log_q = F.logsigmoid(u)
        q = torch.sigmoid(u)
        # 1 - q = sigmoid(-u), accurate where q is near 1 (in u's buffer)
        one_minus_q = torch.sigmoid(u.neg_(), out=u)
        del u
        if self.gamma_b < 1:
            # d/dx x^gamma is infinite at x = 0 for gamma < 1
            one_minus_q.clamp_min_(torch.finfo(one_minus_q.dtype).tiny)
        gamma_c = per_class(gamma, one_minus_q)
        modulation = one_minus_q.pow(gamma_c)
        # G / a = m ((1 - q) - gamma q log q)
        grad = q.mul_(log_q).mul_(gamma_c)
        del q
        torch.sub(one_minus_q, grad, out=grad).mul_(modulation)
        del one_minus_q
        # -l / a = m log q
        loss = modulation.mul_(log_q)
        del log_q
        ratio = gamma / self.gamma_b
        if self.alpha is None:
            pos_a = neg_a = ratio
        else:
            pos_a, neg_a = ratio * self.alpha, ratio * (1.0 - self.alpha)
        pos_a = target.gather(pos_a.to(grad.dtype)).unsqueeze(1)
        neg_a = per_class(neg_a, grad)
        loss_pos, grad_pos = loss.gather(1, index), grad.gather(1, index)
        loss.mul_(neg_a).scatter_(1, index, loss_pos * pos_a)
        loss = loss.sum(1).neg_() * target.valid
        grad_pos = grad_pos * pos_a
        grad.mul_(neg_a)
        if self.training:
            pos = grad.new_zeros(c + 1, dtype=torch.float64)
            pos.index_add_(0, target.index.reshape(-1),
                           grad_pos.reshape(-1).double())
            pos = pos[:c]
            # |dl/dz| summed over the labelled pixels: one batched product
            # with the mask; the positive logit is still G there
            grad.scatter_(1, index, grad_pos)
            mask = target.valid.to(grad.dtype).view(n, -1, 1)
            total = torch.bmm(grad.view(n, c, -1), mask).sum((0, 2))
            self.add_statistics(pos, total.double() - pos)
        grad.scatter_(1, index, grad_pos.neg_())
        return loss, grad

    def extra_repr(self) -> str:
        return (f'gamma_b={self.gamma_b}, s={self.s}, alpha={self.alpha}, ' +
                super().extra_repr())
