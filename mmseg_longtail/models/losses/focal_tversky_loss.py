"""Focal Tversky loss over the classes present in the batch."""
from typing import Tuple

import torch
from mmseg.registry import MODELS
from torch import Tensor

from .region_loss import RegionLoss


@MODELS.register_module()
class FocalTverskyLoss(RegionLoss):
    """Per-class (focal) Tversky loss.

    `Tversky loss function for image segmentation using 3D fully
    convolutional deep networks <https://arxiv.org/abs/1706.05721>`_
    (Salehi et al., MLMI 2017) with the focal exponent of `A Novel Focal
    Tversky Loss Function with Improved Attention U-Net for Lesion
    Segmentation <https://arxiv.org/abs/1810.07842>`_ (Abraham & Khan, ISBI
    2019). With ``x`` the soft-max probabilities and ``y`` the target of
    class ``c`` over the labelled pixels::

        TP = sum min(x, y),  FP = sum max(x - y, 0),  FN = sum max(y - x, 0)
        TI_c = (TP + smooth) / (TP + alpha FP + beta FN + smooth)
        loss = sum_c w_c (1 - TI_c)^(1 / gamma) / sum_c w_c

    For one-hot targets these are the papers' ``TP = <x, y>``,
    ``FP = <x, 1 - y>``, ``FN = <1 - x, y>``; for soft targets the min /
    max forms are 0 only when ``x = y`` (as the plugin's Dice and Jaccard
    L1 forms). ``alpha`` weighs false positives and ``beta`` false
    negatives, as in Salehi et al. and mmseg (Abraham & Khan swap the
    names); ``beta > alpha`` favours recall, which helps small structures.
    ``alpha = beta = 0.5`` is :class:`SoftDiceLoss` (whose ``smooth`` is
    twice this one) and ``alpha = beta = 1`` :class:`SoftJaccardLoss`. The
    focal exponent is ``1 / gamma`` as in Abraham & Khan's paper
    (``gamma`` in [1, 3], best 4/3); ``gamma = 1`` is the plain Tversky
    loss.

    Why not mmseg's ``TverskyLoss``: mmseg 1.2.2's has no focal exponent,
    and its ``forward`` drops the decode head's ``ignore_index`` (it keeps
    its constructor's, 255 by default, so a head with another
    ``ignore_index`` trains on its ignored pixels), skips the class whose
    id equals ``ignore_index`` while still dividing by the number of
    classes, lets non-finite logits at ignored pixels reach the value and
    the gradient (``0 * nan``), averages every class (absent ones
    included) and follows none of the reduction arguments of mmseg's
    ``CrossEntropyLoss``. Here ignored pixels are masked as in every region
    loss of the plugin (tested with inf / NaN logits there).

    Computed as ``loss_c = coef_c * E_c`` with ``E_c = alpha FP + beta FN``
    and ``coef_c = E_c^(1/gamma - 1) / (TP + E_c + smooth)^(1/gamma)`` (0
    for a term without error), exact in value and gradient. ``w_c`` is
    ``class_weight`` (default 1). See :class:`RegionLoss` for the class
    sets, ``per_image`` / ``batch``, soft targets, ignore masking and the
    reductions.

    Args:
        alpha (float): weight of the false positives, >= 0. Default: 0.3.
        beta (float): weight of the false negatives, >= 0. Default: 0.7.
        gamma (float): focal parameter, > 0; the exponent is ``1/gamma``.
            Default: 1.0 (Tversky loss).
        smooth (float): added to numerator and denominator, >= 0.
            Default: 0.0.
        classes (str): ``'present'`` (default) or ``'all'``.
        per_image (bool): per (image, class) terms. Default: False.
        batch (bool, optional): ``batch=True`` is ``per_image=False``
            (MONAI's name); see :class:`RegionLoss`.
        loss_name (str): key in mmseg's loss dict, ``loss_*``.
        **kwargs: ``reduction``, ``class_weight``, ``loss_weight``,
            ``avg_non_ignore`` of :class:`LongTailLoss`.
    """

    def __init__(self,
                 alpha: float = 0.3,
                 beta: float = 0.7,
                 gamma: float = 1.0,
                 smooth: float = 0.0,
                 loss_name: str = 'loss_tversky',
                 **kwargs) -> None:
        super().__init__(loss_name=loss_name, **kwargs)
        for field, value in (('alpha', alpha), ('beta', beta),
                             ('smooth', smooth)):
            if not value >= 0:
                raise ValueError(f'{field} must be >= 0, got {value}')
        if not alpha + beta > 0:
            raise ValueError('alpha + beta must be > 0, got '
                             f'alpha={alpha}, beta={beta}')
        if not gamma > 0:
            raise ValueError(f'gamma must be > 0, got {gamma}')
        self.alpha, self.beta = float(alpha), float(beta)
        self.gamma, self.smooth = float(gamma), float(smooth)

    def pixel_error(self, x: Tensor, y: Tensor) -> Tensor:
        diff = x - y
        return (self.alpha * diff.clamp_min(0) +
                self.beta * (-diff).clamp_min(0))

    def coefficients(self, x: Tensor, y: Tensor,
                     err: Tensor) -> Tuple[Tensor, Tensor]:
        x_sum, y_sum = self.term_sum(x), self.term_sum(y)
        mask = self.term_mask(x_sum, y_sum)
        error = self.term_sum(err)
        denom = self.term_sum(torch.minimum(x, y)) + error + self.smooth
        # a term without error has loss 0 (and a 0 ** negative power)
        has_error = mask & (error > 0)
        error = torch.where(has_error, error, 1.0)
        denom = torch.where(has_error, denom, 1.0)
        exponent = 1.0 / self.gamma
        coef = error.pow(exponent - 1.0) / denom.pow(exponent)
        coef, n_terms = self.weighted_terms(mask,
                                            torch.where(has_error, coef, 0.0))
        return coef, n_terms

    def extra_repr(self) -> str:
        return (f'alpha={self.alpha}, beta={self.beta}, gamma={self.gamma}, '
                f'smooth={self.smooth}, ' + super().extra_repr())
