"""PAT: pixel-wise adaptive training loss."""
from typing import Optional

import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor

from .base import AVG_EPS, LongTailLoss, PixelTargets, check_choice


@MODELS.register_module()
class PATLoss(LongTailLoss):
    """Pixel-wise Adaptive Training loss.

    Each pixel's cross-entropy is scaled by a coefficient of its own
    true-class probability::

        l = beta(p_y) * (-log p_y),   beta(p) = exp((p - 1) / tau)

    Unlike focal loss, confident pixels keep most of their loss
    (``beta -> 1`` as ``p -> 1``). The per-pixel loss decreases in ``p``
    for ``tau > 1/e`` (its derivative is ``beta * (-log(p) / tau - 1/p)``,
    negative iff ``-p log p < tau``); with a smaller ``tau`` and a
    differentiated ``beta`` it rises around ``p = 1/e``, so use
    ``detach_weight=True`` there. With ``normalize='mask'`` (the paper's
    mask-size normalisation, Sec. 3.2, Eq. 2), each class's summed loss in
    an image is divided by that class's mask size in that image, and the
    result is averaged over the (image, class) pairs present, so a small
    mask weighs as much as a large one. The per-(image, class) sums use
    ``index_add_`` (no loop, no host sync).

    Reductions with ``normalize='mask'``: 'mean' averages over the present
    (image, class) pairs (weighted by ``class_weight`` when given, as mmseg
    weights pixels; ``avg_factor``, if given, replaces the denominator;
    ``avg_non_ignore`` has no effect since ignored pixels belong to no
    pair), 'sum' sums the pair losses, 'none' returns each pixel's loss
    divided by its mask size, shape (N, H, W), so its sum is the 'sum'
    value. With ``normalize='pixel'`` the reductions are mmseg's usual ones.

    Args:
        tau (float): temperature, > 0. Default: 2.0.
        normalize (str): 'mask' or 'pixel'. Default: 'mask'.
        detach_weight (bool): stop the gradient through ``beta(p_y)``
            (default False: ``beta`` is differentiated, like focal loss's
            modulating factor).
        loss_name (str): key in mmseg's loss dict, ``loss_*``.
        **kwargs: ``reduction``, ``class_weight``, ``loss_weight``,
            ``avg_non_ignore`` of :class:`LongTailLoss`.
    """

    def __init__(self,
                 tau: float = 2.0,
                 normalize: str = 'mask',
                 detach_weight: bool = False,
                 loss_name: str = 'loss_pat',
                 **kwargs) -> None:
        super().__init__(loss_name=loss_name, **kwargs)
        if not tau > 0:
            raise ValueError(f'tau must be > 0, got {tau}')
        self.tau = float(tau)
        self.normalize = check_choice(normalize, ('mask', 'pixel'),
                                      'normalize')
        self.detach_weight = bool(detach_weight)

    def pixel_loss(self, cls_score: Tensor, target: PixelTargets) -> Tensor:
        ce = F.cross_entropy(
            cls_score,
            target.label,
            reduction='none',
            ignore_index=target.ignore_index)
        # beta = exp((p - 1) / tau), p = exp(-ce); 1 at ignored pixels.
        # In-place steps where autograd allows: fewer fresh tensors.
        with torch.set_grad_enabled(torch.is_grad_enabled()
                                    and not self.detach_weight):
            beta = (ce.neg().exp_() - 1.0).div_(self.tau).exp_()
        loss = beta * ce
        class_weight = self.class_weights(cls_score)
        if class_weight is not None:
            loss = loss * target.gather(class_weight)
        return loss

    def default_avg_factor(self, cls_score: Tensor, target: PixelTargets):
        if self.normalize == 'mask':
            return None  # the (image, class) pairs: counted in reduce()
        return super().default_avg_factor(cls_score, target)

    def reduce(self, loss: Tensor, target: PixelTargets,
               weight: Optional[Tensor], reduction: str,
               avg_factor) -> Tensor:
        if self.normalize == 'pixel':
            return super().reduce(loss, target, weight, reduction,
                                  avg_factor)
        if weight is not None:
            loss = loss * weight.to(loss.dtype)
        num_images, slots = loss.shape[0], target.num_classes + 1
        # one bin per (image, class) and a spare one per image that
        # collects its ignored pixels (target.index maps them to C)
        offset = torch.arange(
            0, num_images * slots, slots, device=loss.device)
        bins = target.index.view(num_images, -1).add(offset.view(-1, 1))
        bins = bins.view(-1)
        with torch.no_grad():
            sizes = loss.new_zeros(num_images * slots).index_add_(
                0, bins, loss.new_ones(1).expand(bins.numel()))
        inv_size = sizes.clamp_min(1).reciprocal_()
        if reduction == 'none':
            per_pixel = inv_size.index_select(0, bins).view_as(loss)
            return loss * per_pixel  # ignored pixels: loss 0
        sums = loss.new_zeros(num_images * slots).index_add_(
            0, bins, loss.reshape(-1))
        total = (sums * inv_size).view(num_images, slots)[:, :-1].sum()
        if reduction == 'sum':
            if avg_factor is not None:
                raise ValueError(
                    'avg_factor can not be used with reduction="sum"')
            return total
        if avg_factor is None:
            # pairs present, each weighted by its class weight (mmseg's
            # weighted mean, with pairs in place of pixels)
            present = (sizes.view(num_images, slots)[:, :-1] > 0).to(
                loss.dtype)
            class_weight = self.mean_class_weights(loss)
            if class_weight is not None:
                present = present * class_weight
            avg_factor = present.sum()
        return total / (avg_factor + AVG_EPS)

    def extra_repr(self) -> str:
        return (f'tau={self.tau}, normalize={self.normalize!r}, '
                f'detach_weight={self.detach_weight}, ' +
                super().extra_repr())
