"""Generalized Dice loss (Dice with inverse squared volume weights)."""
from typing import Tuple

import torch
from mmseg.registry import MODELS
from torch import Tensor

from .region_loss import RegionLoss


def generalized_dice_weights(volume: Tensor, eps: float) -> Tensor:
    """Sudre et al.'s class weights ``w_c = 1 / n_c^2``, ``n_c`` the target
    volume (pixels, or target probability mass) of class ``c``, clamped to
    at least ``eps``: a trace of soft-label mass gets the weight of ``eps``
    pixels instead of an overflowing one. Absent classes (``n_c = 0``) get
    ``1 / eps^2`` here; the loss decides whether they enter."""
    return volume.clamp_min(eps).square().reciprocal()


@MODELS.register_module()
class GeneralizedDiceLoss(RegionLoss):
    """Generalized Dice loss.

    `Generalised Dice overlap as a deep learning loss function for highly
    unbalanced segmentations <https://arxiv.org/abs/1707.03237>`_ (Sudre et
    al., DLMIA 2017). One Dice over all classes, each weighted by the
    inverse square of its target volume so that small structures count as
    much as large ones::

        GDL = 1 - 2 sum_c w_c <x_c, y_c> / sum_c w_c (|x_c| + |y_c|),
        w_c = a_c / max(n_c, eps)^2,   n_c = |y_c|

    with ``x`` the soft-max probabilities, ``y`` the target, L1 norms over
    the labelled pixels of the batch (of each image with ``per_image``;
    then the mean over the images) and ``a_c`` the ``class_weight``
    (default 1). The weights are constants (no gradient). The numerator is
    computed as ``sum_c w_c (|x_c| + |y_c| - |x_c - y_c|)``, equal to
    ``2 sum_c w_c <x_c, y_c>`` for one-hot targets and 1 only when
    ``x = y`` for soft ones (as the Dice semimetric loss of Wang et al.,
    MICCAI 2023), so ``GDL = sum_c w_c |x_c - y_c| / sum_c w_c (|x_c| +
    |y_c|)``.

    A class absent from the target has ``w_c = 1 / 0^2``. With
    ``classes='present'`` (default) it is left out; with ``classes='all'``
    it gets the largest weight of the present classes (the convention of
    NiftyNet, the paper's framework), so predicting it is penalised.

    'mean' averages over the batch (one term) or, with ``per_image``, over
    the images that have a labelled pixel; 'sum' sums them; 'none' is the
    per-pixel map of :class:`RegionLoss`.

    Args:
        eps (float): smallest target volume used in the weights, > 0.
            Default: 1.0 (one pixel: integer labels never reach it).
        classes (str): ``'present'`` (default) or ``'all'``.
        per_image (bool): one Dice per image. Default: False.
        batch (bool, optional): ``batch=True`` is ``per_image=False``
            (MONAI's name); see :class:`RegionLoss`.
        loss_name (str): key in mmseg's loss dict, ``loss_*``.
        **kwargs: ``reduction``, ``class_weight``, ``loss_weight``,
            ``avg_non_ignore`` of :class:`LongTailLoss`.
    """

    def __init__(self,
                 eps: float = 1.0,
                 loss_name: str = 'loss_gdice',
                 **kwargs) -> None:
        super().__init__(loss_name=loss_name, **kwargs)
        if not eps > 0:
            raise ValueError(f'eps must be > 0, got {eps}')
        self.eps = float(eps)

    def volume_weights(self, y_sum: Tensor, x_sum: Tensor) -> Tensor:
        """Per-term weights ``w_c`` (0 for classes left out), before
        ``class_weight``."""
        y_sum = y_sum.detach()
        present = y_sum > 0
        weights = generalized_dice_weights(y_sum, self.eps)
        if self.classes == 'present':
            return torch.where(present, weights, 0.0)
        largest = torch.where(present, weights, 0.0).amax(-1, keepdim=True)
        weights = torch.where(present, weights, largest)
        # a class with no mass on either side adds 0 / 0: left out
        return torch.where((x_sum + y_sum) > 0, weights, 0.0)

    def coefficients(self, x: Tensor, y: Tensor,
                     err: Tensor) -> Tuple[Tensor, Tensor]:
        x_sum, y_sum = self.term_sum(x), self.term_sum(y)
        weights = self.volume_weights(y_sum, x_sum)
        class_weight = self.term_class_weight(weights)
        if class_weight is not None:
            weights = weights * class_weight
        denom = (weights * (x_sum + y_sum)).sum(-1, keepdim=True)
        kept = denom > 0
        coef = self.masked_ratio(weights, denom, kept)
        return coef, kept.to(coef.dtype).sum()

    def extra_repr(self) -> str:
        return f'eps={self.eps}, ' + super().extra_repr()
