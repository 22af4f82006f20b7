"""Shared machinery of the region (overlap) losses: soft Jaccard, soft Dice
and Generalized Dice.

A region loss is a ratio of sums over pixels, per class (or per image and
class), not a mean of per-pixel terms. Each one used here can be written as

    loss_t = coef_t * sum_p err_{p,c(t)}

where ``t`` is a term (a class, or an (image, class) pair with
``per_image=True``), ``err`` a per-pixel, per-class error (``|x - y|`` or
``(x - y)^2``) and ``coef_t`` a factor that depends on the term's sums
(and so carries gradient). :meth:`RegionLoss.pixel_loss` therefore returns
the per-pixel map ``sum_c coef_c err_pc`` whose sum over pixels is the sum
of the term losses, exactly (value and gradient). This keeps the contract of
:class:`LongTailLoss` unchanged:

* ``reduction='sum'``: the sum of the term losses (class-weighted);
* ``reduction='mean'``: divided by the number of terms that enter the loss
  (with ``class_weight``: the sum of their class weights, mmseg's weighted
  mean with terms in place of pixels; Generalized Dice, one ratio over the
  classes, counts batches or images); ``avg_factor`` replaces it;
* ``reduction='none'``: the (N, H, W) map, whose sum is the 'sum' value;
* ``weight`` (mmseg's per-pixel weight) scales each pixel's share of the
  numerators; the denominators are the unweighted sums. To take pixels out
  of a ratio, give them ``ignore_index``.

``avg_non_ignore`` has no effect: ignored pixels belong to no term.

Targets are integer labels (N, H, W) with ``ignore_index``, or soft labels:
a floating-point tensor of the logits' shape (N, C, H, W) holding class
probabilities, where pixels whose probabilities are all 0 are ignored.
Ignored pixels are masked before the soft-max (logits there never reach the
value or the gradient, even if they are inf / NaN) and after it (their
probabilities count in no sum).
"""
from typing import Optional, Tuple, Union

import torch
from torch import Tensor

from .base import LongTailLoss, PixelTargets, check_choice

CLASS_SETS = ('present', 'all')


class RegionLoss(LongTailLoss):
    """Base class of the region losses (see the module docstring).

    Args:
        classes (str): which terms enter the loss. ``'present'`` (default):
            the classes present in the target (positive target mass among
            the labelled pixels of the batch, or of the image with
            ``per_image``), as JDTLosses' "present classes"; a class the
            model predicts but the batch lacks adds nothing. ``'all'``:
            every class whose prediction or target mass is positive, the
            classes ``LongTailIoUMetric`` averages over (absent from both:
            left out, like a NaN IoU).
        per_image (bool): one term per (image, class) instead of per class
            over the batch. Default: False.
        batch (bool, optional): MONAI's name for the opposite of
            ``per_image``: ``batch=True`` sums over the whole batch before
            each ratio (``per_image=False``, the default), ``batch=False``
            per image. Give one of the two; None (default) leaves it to
            ``per_image``.
        loss_name (str): key in mmseg's loss dict, ``loss_*``.
        **kwargs: ``reduction``, ``class_weight``, ``loss_weight``,
            ``avg_non_ignore`` of :class:`LongTailLoss`.
    """

    def __init__(self,
                 classes: str = 'present',
                 per_image: Optional[bool] = None,
                 batch: Optional[bool] = None,
                 loss_name: str = 'loss_region',
                 **kwargs) -> None:
        super().__init__(loss_name=loss_name, **kwargs)
        self.classes = check_choice(classes, CLASS_SETS, 'classes')
        for field, value in (('per_image', per_image), ('batch', batch)):
            if value is not None and not isinstance(value, bool):
                raise ValueError(f'{field} must be True or False, got '
                                 f'{value!r}')
        if batch is not None and per_image is not None:
            if batch == per_image:
                raise ValueError(
                    f'batch={batch} contradicts per_image={per_image} '
                    '(batch=True is per_image=False): give one of them')
        elif batch is not None:
            per_image = not batch
        self.per_image = bool(per_image)

    # ----------------------------------------------------------- inputs
    @staticmethod
    def probabilities(cls_score: Tensor,
                      target: PixelTargets) -> Tuple[Tensor, Tensor, Tensor]:
        """Masked prediction and target probabilities.

        Returns:
            ``x`` (N, C, H, W): soft-max of the logits, 0 at ignored pixels;
            ``y`` (N, C, H, W): one-hot labels or the soft target, 0 at
            ignored pixels; ``valid`` (N, 1, H, W) bool.
        """
        label = target.label
        if label.shape == cls_score.shape:
            if not label.is_floating_point():
                raise ValueError(
                    'label: a soft target of the logits\' shape '
                    f'{tuple(cls_score.shape)} must hold probabilities '
                    f'(floating point), got dtype {label.dtype}')
            y = label.to(cls_score.dtype)
            valid = y.sum(1, keepdim=True) > 0
        elif label.shape == cls_score.shape[:1] + cls_score.shape[2:]:
            valid = target.valid.unsqueeze(1)
            classes = torch.arange(
                cls_score.shape[1], device=cls_score.device).view(
                    (1, -1) + (1, ) * (cls_score.dim() - 2))
            # ignored pixels hold index C: a row of zeros
            y = (target.index.unsqueeze(1) == classes).to(cls_score.dtype)
        else:
            raise ValueError(
                'label must be (N, H, W) class ids or soft (N, C, H, W) '
                f'probabilities matching the logits {tuple(cls_score.shape)}'
                f', got {tuple(label.shape)}')
        # zeroed before the soft-max so inf / NaN logits at ignored pixels
        # reach neither the value nor the gradient
        z = cls_score.masked_fill(~valid, 0.0)
        x = torch.where(valid, z.softmax(1), 0.0)
        return x, y, valid

    def term_sum(self, values: Tensor) -> Tensor:
        """Sum over pixels: (C,), or (N, C) with ``per_image``."""
        dims = tuple(range(2, values.dim()))
        if not self.per_image:
            dims = (0, ) + dims
        return values.sum(dims)

    def term_mask(self, x_sum: Tensor, y_sum: Tensor) -> Tensor:
        """Bool mask of the terms that enter the loss (``classes``)."""
        if self.classes == 'present':
            return y_sum > 0
        return (x_sum + y_sum) > 0

    def term_class_weight(self, like: Tensor) -> Optional[Tensor]:
        """``class_weight`` shaped like the terms, or None."""
        weight = self.class_weights(like)
        return None if weight is None else weight.expand_as(like)

    def spread(self, coef: Tensor, err: Tensor) -> Tensor:
        """``sum_c coef_c err_pc``: the per-pixel map, (N, H, W)."""
        shape = coef.shape + (1, ) * (err.dim() - 2)
        if not self.per_image:
            shape = (1, ) + shape
        return (err * coef.view(shape)).sum(1)

    # ------------------------------------------------------- to override
    def coefficients(self, x: Tensor, y: Tensor,
                     err: Tensor) -> Tuple[Tensor, Tensor]:
        """``(coef, n_terms)``: per-term factors (0 for terms left out) such
        that the term loss is ``coef * term_sum(err)``, and the denominator
        of ``reduction='mean'`` (a 0-dim tensor)."""
        raise NotImplementedError

    def pixel_error(self, x: Tensor, y: Tensor) -> Tensor:
        """Per-pixel, per-class error ``|x - y|`` (L1 sums)."""
        return (x - y).abs()

    # --------------------------------------------------- LongTailLoss API
    def pixel_loss(self, cls_score: Tensor, target: PixelTargets) -> Tensor:
        x, y, _ = self.probabilities(cls_score, target)
        err = self.pixel_error(x, y)
        coef, n_terms = self.coefficients(x, y, err)
        # the mean's denominator depends on the terms found here; the
        # targets object lives for this one forward call
        target.region_terms = n_terms
        return self.spread(coef, err)

    def default_avg_factor(self, cls_score: Tensor, target: PixelTargets):
        return target.region_terms

    @staticmethod
    def masked_ratio(numer: Union[Tensor, float], denom: Tensor,
                     mask: Tensor) -> Tensor:
        """``numer / denom`` where ``mask``, else 0 (no 0/0 in the value or
        the gradient)."""
        safe = torch.where(mask, denom, 1.0)
        return torch.where(mask, numer / safe, 0.0)

    def weighted_terms(self, mask: Tensor,
                       coef: Tensor) -> Tuple[Tensor, Tensor]:
        """Apply ``class_weight`` to the per-term factors; the mean's
        denominator is the number (or class-weight sum) of the terms."""
        kept = mask.to(coef.dtype)
        weight = self.term_class_weight(coef)
        if weight is not None:
            coef = coef * weight
            kept = kept * weight
        return coef, kept.sum()

    def extra_repr(self) -> str:
        return (f'classes={self.classes!r}, per_image={self.per_image}, ' +
                super().extra_repr())
