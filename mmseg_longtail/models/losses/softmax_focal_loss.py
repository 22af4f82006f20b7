"""Multi-class (softmax) focal loss."""
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor

from .base import LongTailLoss, PixelTargets


def softmax_focal_pixel_loss(cls_score: Tensor, label: Tensor, gamma: float,
                             ignore_index: int) -> Tensor:
    """``(1 - p_y)^gamma * (-log p_y)`` per pixel, 0 at ignored pixels.

    ``-log p_y`` comes from one fused log-softmax/NLL pass; the modulating
    factor only touches (N, H, W) tensors. ``1 - p_y = -expm1(log p_y)`` is
    accurate for confident pixels. ``gamma = 0`` returns cross-entropy
    itself (bit-identical to ``F.cross_entropy``).
    """
    ce = F.cross_entropy(
        cls_score, label, reduction='none', ignore_index=ignore_index)
    if gamma == 0:
        return ce
    one_minus_p = -(-ce).expm1()
    if gamma < 1:
        # d/dp (1-p)^gamma is infinite at p = 1 for gamma < 1
        one_minus_p = one_minus_p.clamp_min(torch.finfo(ce.dtype).tiny)
    return one_minus_p.pow(gamma) * ce


@MODELS.register_module()
class SoftmaxFocalLoss(LongTailLoss):
    """Softmax focal loss for multi-class segmentation.

    `Focal Loss for Dense Object Detection
    <https://arxiv.org/abs/1708.02002>`_ (Lin et al., ICCV 2017), in its
    multi-class form (mmseg's ``FocalLoss`` is sigmoid-only)::

        l = -alpha_y * (1 - p_y)^gamma * log p_y,   p = softmax(z)

    ``alpha`` is ``class_weight``. ``gamma=0`` equals mmseg's
    ``CrossEntropyLoss`` exactly.

    Args:
        gamma (float): focusing parameter, >= 0. Default: 2.0.
        loss_name (str): key in mmseg's loss dict, ``loss_*``.
        **kwargs: ``reduction``, ``class_weight``, ``loss_weight``,
            ``avg_non_ignore`` of :class:`LongTailLoss`.
    """

    def __init__(self,
                 gamma: float = 2.0,
                 loss_name: str = 'loss_focal',
                 **kwargs) -> None:
        super().__init__(loss_name=loss_name, **kwargs)
        if not gamma >= 0:
            raise ValueError(f'gamma must be >= 0, got {gamma}')
        self.gamma = float(gamma)

    def pixel_loss(self, cls_score: Tensor, target: PixelTargets) -> Tensor:
        loss = softmax_focal_pixel_loss(cls_score, target.label, self.gamma,
                                        target.ignore_index)
        alpha = self.class_weights(cls_score)
        if alpha is not None:
            loss = loss * target.gather(alpha)
        return loss

    def extra_repr(self) -> str:
        return f'gamma={self.gamma}, ' + super().extra_repr()
