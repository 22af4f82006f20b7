"""Equalized Focal Loss (sigmoid focal loss with class-specific focusing)."""
import math
from typing import Optional

import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor

from .base import PixelTargets, per_class
from .gradient_stats import GradientStatsLoss, binary_targets


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
        z, positive, valid = binary_targets(cls_score, target)
        gamma = per_class(self.focusing(z), z)
        scale = gamma / self.gamma_b
        if self.alpha is not None:
            scale = scale * torch.where(positive, self.alpha,
                                        1.0 - self.alpha)
        u = torch.where(positive, z, -z)  # q = sigmoid(u)
        log_q = F.logsigmoid(u)
        one_minus_q = torch.sigmoid(-u)  # accurate where q is near 1
        if self.gamma_b < 1:
            # d/dx x^gamma is infinite at x = 0 for gamma < 1
            one_minus_q = one_minus_q.clamp_min(torch.finfo(z.dtype).tiny)
        modulation = one_minus_q.pow(gamma)
        if self.training:
            with torch.no_grad():
                q = torch.sigmoid(u)
                grad = scale * modulation * (one_minus_q - gamma * q * log_q)
            self.accumulate(grad, positive, valid)
        loss = (scale * modulation * -log_q).sum(1) * target.valid
        class_weight = self.class_weights(cls_score)
        if class_weight is not None:
            loss = loss * target.gather(class_weight)
        return loss

    def extra_repr(self) -> str:
        return (f'gamma_b={self.gamma_b}, s={self.s}, alpha={self.alpha}, ' +
                super().extra_repr())
