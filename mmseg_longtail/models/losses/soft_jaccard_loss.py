"""Soft Jaccard (IoU) loss over the classes present in the batch."""
from typing import Tuple

from mmseg.registry import MODELS
from torch import Tensor

from .region_loss import RegionLoss


@MODELS.register_module()
class SoftJaccardLoss(RegionLoss):
    """Per-class soft Jaccard loss (Jaccard metric loss, L1 form).

    `Jaccard Metric Losses: Optimizing the Jaccard Index with Soft Labels
    <https://arxiv.org/abs/2302.05666>`_ (Wang, Ning & Blaschko, NeurIPS
    2023; the JDTLosses code), with the class sets of `Revisiting
    Evaluation Metrics for Semantic Segmentation
    <https://arxiv.org/abs/2310.19252>`_ (Wang et al., NeurIPS 2023).
    With ``x`` the soft-max probabilities and ``y`` the target of class
    ``c`` over the labelled pixels, and L1 norms ``|.|``::

        I_c = (|x| + |y| - |x - y|) / 2,   U_c = (|x| + |y| + |x - y|) / 2
        J_c = (I_c + smooth) / (U_c + smooth)
        loss = sum_c w_c (1 - J_c) / sum_c w_c      (terms kept by classes)

    For one-hot targets ``|x - y| = |x| + |y| - 2 <x, y>``, so ``I_c`` and
    ``U_c`` are the soft intersection ``<x, y>`` and union
    ``|x| + |y| - <x, y>``, and for one-hot predictions ``1 - J_c`` is
    ``1 - IoU_c``, the IoU ``I / (P + L - I)`` that ``LongTailIoUMetric``
    computes (``smooth=0``). For soft targets the L1 form is 1 only when
    ``x = y`` (the product form is not). Computed as
    ``1 - J_c = |x - y| / (U_c + smooth)``.

    ``w_c`` is ``class_weight`` (default 1). See :class:`RegionLoss` for
    the class sets, ``per_image``, soft targets, ignore masking and the
    reductions.

    Args:
        smooth (float): added to intersection and union, >= 0 (pixels).
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
                 smooth: float = 0.0,
                 loss_name: str = 'loss_jaccard',
                 **kwargs) -> None:
        super().__init__(loss_name=loss_name, **kwargs)
        if not smooth >= 0:
            raise ValueError(f'smooth must be >= 0, got {smooth}')
        self.smooth = float(smooth)

    def coefficients(self, x: Tensor, y: Tensor,
                     err: Tensor) -> Tuple[Tensor, Tensor]:
        x_sum, y_sum = self.term_sum(x), self.term_sum(y)
        mask = self.term_mask(x_sum, y_sum)
        union = 0.5 * (x_sum + y_sum + self.term_sum(err)) + self.smooth
        coef = self.masked_ratio(1.0, union, mask)
        return self.weighted_terms(mask, coef)

    def extra_repr(self) -> str:
        return f'smooth={self.smooth}, ' + super().extra_repr()
