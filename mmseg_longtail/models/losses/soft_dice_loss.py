"""Soft Dice loss over the classes present in the batch."""
from typing import Tuple

from mmseg.registry import MODELS
from torch import Tensor

from .region_loss import RegionLoss


@MODELS.register_module()
class SoftDiceLoss(RegionLoss):
    """Per-class soft Dice loss.

    `V-Net <https://arxiv.org/abs/1606.04797>`_ (Milletari et al., 3DV 2016)
    optimises the Dice score directly. With ``x`` the soft-max
    probabilities and ``y`` the target of class ``c`` over the labelled
    pixels::

        exponent=2 (V-Net):
            D_c = (2 <x, y> + smooth) / (|x|^2 + |y|^2 + smooth)
        exponent=1 (L1):
            D_c = (|x| + |y| - |x - y| + smooth) / (|x| + |y| + smooth)
        loss = sum_c w_c (1 - D_c) / sum_c w_c      (terms kept by classes)

    ``|.|`` is the L1 norm and ``|.|^2`` the squared L2 norm. For one-hot
    targets ``|x| + |y| - |x - y| = 2 <x, y>``: the L1 form is the soft Dice
    ``2 <x, y> / (|x| + |y|)``, written as the Dice semimetric loss of
    `Wang et al. <https://arxiv.org/abs/2303.16296>`_ (MICCAI 2023) so that
    with soft targets it is 1 only when ``x = y``; the V-Net form has that
    property as it is (``1 - D_c = |x - y|^2 / (|x|^2 + |y|^2)``). For
    one-hot predictions both are ``1 - Dice_c = 1 - 2 I / (P + L)``, the
    Dice that ``LongTailIoUMetric`` reports (``smooth=0``). Computed as
    ``1 - D_c = sum_p err / (den + smooth)`` with ``err = |x - y|`` or
    ``(x - y)^2``.

    ``w_c`` is ``class_weight`` (default 1). See :class:`RegionLoss` for
    the class sets, ``per_image``, soft targets, ignore masking and the
    reductions.

    Args:
        exponent (int): 1 (L1 sums, default) or 2 (V-Net's squares).
        smooth (float): added to numerator and denominator, >= 0.
            Default: 0.0. A term without error has loss 0 whatever it is.
        classes (str): ``'present'`` (default) or ``'all'``.
        per_image (bool): per (image, class) terms. Default: False.
        batch (bool, optional): ``batch=True`` is ``per_image=False``
            (MONAI's name); see :class:`RegionLoss`.
        loss_name (str): key in mmseg's loss dict, ``loss_*``.
        **kwargs: ``reduction``, ``class_weight``, ``loss_weight``,
            ``avg_non_ignore`` of :class:`LongTailLoss`.
    """

    def __init__(self,
                 exponent: int = 1,
                 smooth: float = 0.0,
                 loss_name: str = 'loss_dice',
                 **kwargs) -> None:
        super().__init__(loss_name=loss_name, **kwargs)
        if exponent not in (1, 2) or isinstance(exponent, bool):
            raise ValueError(f'exponent must be 1 or 2, got {exponent!r}')
        if not smooth >= 0:
            raise ValueError(f'smooth must be >= 0, got {smooth}')
        self.exponent = int(exponent)
        self.smooth = float(smooth)

    def pixel_error(self, x: Tensor, y: Tensor) -> Tensor:
        diff = x - y
        return diff.abs() if self.exponent == 1 else diff.square()

    def coefficients(self, x: Tensor, y: Tensor,
                     err: Tensor) -> Tuple[Tensor, Tensor]:
        x_sum, y_sum = self.term_sum(x), self.term_sum(y)
        mask = self.term_mask(x_sum, y_sum)
        if self.exponent == 2:
            # one-hot y: y^2 = y; soft y needs its squares
            x_sum, y_sum = self.term_sum(x.square()), self.term_sum(
                y.square())
        coef = self.masked_ratio(1.0, x_sum + y_sum + self.smooth, mask)
        return self.weighted_terms(mask, coef)

    def extra_repr(self) -> str:
        return (f'exponent={self.exponent}, smooth={self.smooth}, ' +
                super().extra_repr())
