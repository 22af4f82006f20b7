"""Shared machinery of the long-tail losses: class prior, ignore masking,
class weights and mmseg-compatible reduction.

Every loss of this package derives from :class:`LongTailLoss`, which follows
the contract of mmseg 1.x's ``CrossEntropyLoss``:

* constructor arguments ``reduction``, ``class_weight``, ``loss_weight``,
  ``loss_name`` (must start with ``loss_`` so that mmseg adds it to the
  total loss) and ``avg_non_ignore``, plus ``use_sigmoid=False`` /
  ``use_mask=False``, so that a loss dict merged into a stock config's
  ``CrossEntropyLoss`` dict builds (:func:`check_merged_arguments` rejects
  what contradicts the loss, naming the fix);
* ``forward(cls_score, label, weight=None, avg_factor=None,
  reduction_override=None, ignore_index=255, **kwargs)``;
* ``reduction='mean'`` divides the summed loss by mmseg 1.x's denominator
  (:meth:`LongTailLoss.default_avg_factor`): with ``avg_non_ignore=False``
  the number of *all* pixels, ignored ones included (they contribute 0);
  with ``avg_non_ignore=True`` the number of non-ignored pixels; with
  ``class_weight`` the sum of the pixels' class weights instead (PyTorch's
  weighted mean), each pixel's loss being multiplied by its class weight.

Subclasses implement :meth:`LongTailLoss.pixel_loss`, the per-pixel loss of
shape (N, H, W), zero at ignored pixels, from the logits and a
:class:`PixelTargets` (labels, valid mask, per-class gathers). Nothing here
loops over classes or pixels, and nothing reads device values back to the
host.
"""
import logging
import warnings
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn as nn
from mmengine.logging import print_log
from torch import Tensor

from mmseg_longtail.utils.class_stats import class_prior, load_class_counts
from mmseg_longtail.utils.class_weights import load_weight_spec
from .reweighting import DeferredReweighting

REDUCTIONS = ('none', 'mean', 'sum')
CountsLike = Union[str, Sequence[float], None]
# the eps mmseg's weight_reduce_loss adds to avg_factor (all-ignored batches)
AVG_EPS = torch.finfo(torch.float32).eps
# CB weights whose max/min ratio is below this are "almost uniform"
NEAR_UNIFORM_RATIO = 1.01


def check_choice(value, choices: Sequence, field: str):
    """Return ``value`` or raise a ValueError naming ``field``."""
    if value not in choices:
        raise ValueError(f'{field} must be one of {tuple(choices)}, '
                         f'got {value!r}')
    return value


def warn_log(message: str) -> None:
    """Warn through Python's warnings and mmengine's current logger, so the
    message reaches both the console and the run's log file."""
    warnings.warn(message, UserWarning, stacklevel=3)
    print_log(message, logger='current', level=logging.WARNING)


def _replace_hint(loss: str) -> str:
    return (f"loss_decode=dict(_delete_=True, type='{loss}', ...) replaces "
            "the base config's loss dict instead of merging into it")


def check_merged_arguments(loss: str, use_sigmoid, use_mask,
                           unexpected: dict) -> None:
    """Check the arguments a loss dict picks up when mmengine merges it into
    a base config's ``CrossEntropyLoss`` dict (stock mmseg configs set
    ``use_sigmoid=False``, ``loss_weight``, sometimes ``loss_name`` or
    ``class_weight``; those keep their mmseg meaning).

    ``use_sigmoid=True`` / ``use_mask=True`` ask for mmseg's binary
    (multi-label) or mask cross-entropy, which none of these losses is (CB's
    sigmoid focal is ``base='sigmoid_focal'``), and any other argument is
    unknown: each raises at build time naming the loss, the argument and the
    fix (``_delete_=True``).
    """
    for field, value, meaning in (
            ('use_sigmoid', use_sigmoid, 'binary (multi-label) '
             'cross-entropy'),
            ('use_mask', use_mask, 'mask cross-entropy (MaskFormer-style '
             'heads)')):
        if value:
            raise ValueError(
                f"{loss}: {field}={value!r} asks for mmseg's {meaning}, "
                f'which {loss} is not. It usually comes from a base '
                "config's CrossEntropyLoss dict your loss dict was merged "
                f'into: {_replace_hint(loss)} (or set {field}=False).')
    if unexpected:
        names = ', '.join(sorted(unexpected))
        raise TypeError(
            f'{loss} got unexpected argument(s) {names}. If they come from a '
            "base config's loss dict your loss dict was merged into, "
            f'{_replace_hint(loss)}.')


def load_class_weight(class_weight) -> Optional[List[float]]:
    """``class_weight`` as mmseg accepts it (list, or .npy / json / pickle
    path) or ``'<stats.json>:<generator>'`` (weights generated from the
    class statistics, :mod:`mmseg_longtail.utils.class_weights`),
    validated: finite and non-negative."""
    if class_weight is None:
        return None
    values = load_weight_spec(class_weight, 'class_weight')
    if values is None:
        from mmseg.models.losses.utils import get_class_weight
        values = get_class_weight(class_weight)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError('class_weight must be a non-empty 1-D list, got '
                         f'shape {values.shape}')
    if not np.all(np.isfinite(values)) or (values < 0).any():
        raise ValueError('class_weight must be finite and non-negative, got '
                         f'{values.tolist()}')
    return values.tolist()


def resolve_beta(beta: Union[float, str], counts: np.ndarray,
                 field: str = 'beta') -> float:
    """The effective-number ``beta`` as a float.

    ``'median'`` gives ``1 - 1/median(n_c)``: the effective-number scale
    ``1 / (1 - beta)`` then equals the median count, which separates the
    classes whatever the count type (pixel counts in the millions make the
    paper's 0.9999 all but uniform).
    """
    if isinstance(beta, str):
        if beta != 'median':
            raise ValueError(f"{field} must be a number in [0, 1) or "
                             f"'median', got {beta!r}")
        n = np.maximum(np.asarray(counts, dtype=np.float64), 1.0)
        return float(1.0 - 1.0 / np.median(n))
    return float(beta)


def effective_number_weights(counts: np.ndarray, beta: float,
                             field: str = 'beta') -> np.ndarray:
    """Class-balanced weights of Cui et al. (CVPR 2019).

    ``w_c = (1 - beta) / (1 - beta^n_c)``, normalised so that
    ``sum_c w_c = C``. Counts are clamped to at least 1 (a class never seen
    in training gets the weight of a class seen once, not inf).
    """
    if not 0.0 <= beta < 1.0:
        raise ValueError(f'{field} must lie in [0, 1), got {beta}')
    n = np.maximum(np.asarray(counts, dtype=np.float64), 1.0)
    if beta == 0.0:
        weights = np.ones_like(n)
    else:
        # 1 - beta^n as -expm1(n log beta): no cancellation for beta near 1
        weights = (1.0 - beta) / -np.expm1(n * np.log1p(beta - 1.0))
    return weights * (n.size / weights.sum())


def warn_if_near_uniform(weights: np.ndarray, counts: np.ndarray,
                         beta: float, count_type: str, field: str) -> None:
    """Warn when class-balanced weights are all but uniform.

    With pixel counts in the millions, ``beta=0.9999`` gives
    ``beta^n_c ~ 0`` for every class and thus equal weights: the loss is
    plain CE. The message proposes a beta whose effective-number scale
    ``1 / (1 - beta)`` equals the median count, which separates the classes.
    """
    ratio = float(weights.max() / weights.min())
    if beta == 0 or weights.size < 2 or ratio >= NEAR_UNIFORM_RATIO:
        return  # beta = 0 asks for uniform weights
    n = np.maximum(np.asarray(counts, dtype=np.float64), 1.0)
    if np.allclose(n, n[0]):
        return  # equal counts: uniform weights are the right answer
    suggested = resolve_beta('median', n, field)
    better = effective_number_weights(n, suggested)
    hint = (f"use {field}={suggested:.10g} ({field}='median': 1 - 1/median "
            f'count; max/min '
            f'weight ratio {better.max() / better.min():.3g})')
    if count_type == 'pixel':
        hint += (" or count_type='image' with a statistics file (image "
                 'counts are orders of magnitude smaller)')
    warn_log(
        f'class-balanced weights with {field}={beta} and {count_type} '
        f'counts (min {n.min():.4g}, max {n.max():.4g}) are almost uniform '
        f'(max/min weight ratio {ratio:.6f} < {NEAR_UNIFORM_RATIO}), so the '
        f'loss is nearly plain cross-entropy; {hint}.')


def log_prior(counts: np.ndarray) -> np.ndarray:
    """``log(pi_c)``, zero counts clamped to 1 (finite everywhere)."""
    return np.log(class_prior(counts, min_count=1.0))


def check_head_losses(head: nn.Module) -> None:
    """Check every loss of ``head`` that knows its class counts against the
    head's ``num_classes`` (the plugin's heads call this when built; in
    mmseg's heads the losses check at their first forward)."""
    losses = getattr(head, 'loss_decode', None)
    if isinstance(losses, nn.Module) and not isinstance(losses,
                                                        nn.ModuleList):
        losses = [losses]
    for loss in losses or ():
        check = getattr(loss, 'check_num_classes', None)
        if callable(check):
            check(head.num_classes)


def per_class(values: Tensor, like: Tensor) -> Tensor:
    """A (C,) tensor shaped to broadcast along dim 1 of ``like``, in its
    dtype."""
    shape = (1, -1) + (1, ) * (like.dim() - 2)
    return values.to(like.dtype).view(shape)


def check_label_values(loss: str, target: 'PixelTargets') -> None:
    """Refuse target values that are neither a class id ``0..C-1`` nor
    ``ignore_index``: a ValueError naming ``loss`` and the values on CPU; on
    other devices a device-side assert with the same message but no values
    (reading them back would synchronise with the host)."""
    label, num_classes = target.label, target.num_classes
    bad = target.valid & ((label < 0) | (label >= num_classes))
    what = (f'are outside the class ids 0..{num_classes - 1} and are not '
            f'ignore_index={target.ignore_index}')
    if label.device.type != 'cpu':
        torch._assert_async(~bad.any(), f'{loss}: label values {what}')
        return
    if bad.any():
        values = torch.unique(label[bad])
        shown = ', '.join(str(v) for v in values[:10].tolist())
        more = f' and {values.numel() - 10} more' if values.numel() > 10 \
            else ''
        raise ValueError(f'{loss}: label values {shown}{more} {what} (a '
                         "pipeline without the data set's CheckLabelRange, "
                         'or the wrong num_classes / ignore_index)')


class PixelTargets:
    """The labels of one forward call, with what the losses derive from
    them, computed once.

    Attributes:
        label: (N, H, W) labels, ``ignore_index`` where unlabelled.
        valid: bool mask of the labelled pixels.
        ignore_index: the ignored label value.
        num_classes: C, from the logits.
    """

    def __init__(self, label: Tensor, ignore_index: int,
                 num_classes: int) -> None:
        self.label = label
        self.ignore_index = ignore_index
        self.num_classes = num_classes
        self.valid = label != ignore_index
        self._index: Optional[Tensor] = None

    @property
    def index(self) -> Tensor:
        """Labels with ignored pixels mapped to C (an extra slot): a valid
        gather index whatever ``ignore_index`` is (255, -1, or a class
        id)."""
        if self._index is None:
            self._index = torch.where(self.valid, self.label,
                                      self.num_classes)
        return self._index

    def gather(self, values: Tensor, fill: float = 0.0) -> Tensor:
        """``values[label]`` per pixel, ``fill`` at ignored pixels.

        ``values``: (C,). ``index_select`` on a (C + 1,) table: several
        times cheaper than masked indexing of the int64 labels.
        """
        table = torch.cat([values, values.new_full((1, ), fill)])
        return table.index_select(0, self.index.reshape(-1)).view(
            self.index.shape)


class LongTailLoss(nn.Module):
    """Base class of the long-tail losses (see the module docstring).

    Args:
        class_counts (list | str, optional): per-class training counts, or
            the path of a statistics JSON written by
            ``tools/analysis_tools/class_stats.py``. Required by the losses
            that set ``requires_counts``. Zero counts are clamped to 1.
        count_type (str): ``'pixel'`` or ``'image'``: which counts to read
            from a statistics file. Default: 'pixel'.
        reduction (str): 'none', 'mean' or 'sum'. Default: 'mean'.
        class_weight (list | str, optional): extra per-class weight,
            multiplied with the loss of pixels of that class (a list or a
            file, as in mmseg). Default: None.
        loss_weight (float): multiplier of the loss. Default: 1.0.
        loss_name (str): key of the loss in mmseg's loss dict; must start
            with ``loss_``.
        avg_non_ignore (bool): average over non-ignored pixels only.
            Default: False (mmseg's default: all pixels).
        use_sigmoid (bool): mmseg's ``CrossEntropyLoss`` argument, accepted
            so that a loss dict merged into a base config's CE dict builds;
            must be False (it selects mmseg's binary cross-entropy).
            Default: False.
        use_mask (bool): as ``use_sigmoid``; must be False. Default: False.
    """

    requires_counts = False

    def __init__(self,
                 class_counts: CountsLike = None,
                 count_type: str = 'pixel',
                 reduction: str = 'mean',
                 class_weight=None,
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_ce',
                 avg_non_ignore: bool = False,
                 use_sigmoid: bool = False,
                 use_mask: bool = False,
                 **unexpected) -> None:
        super().__init__()
        check_merged_arguments(
            type(self).__name__, use_sigmoid, use_mask, unexpected)
        self.reduction = check_choice(reduction, REDUCTIONS, 'reduction')
        if not isinstance(loss_name, str) or not loss_name.startswith('loss_'):
            raise ValueError(
                f"loss_name must start with 'loss_', got {loss_name!r}: "
                'mmseg only adds losses named loss_* to the total loss')
        self._loss_name = loss_name
        self.loss_weight = float(loss_weight)
        self.avg_non_ignore = bool(avg_non_ignore)
        self.count_type = check_choice(count_type, ('pixel', 'image'),
                                       'count_type')
        self.class_weight = load_class_weight(class_weight)
        self.register_buffer(
            'class_weight_tensor',
            None if self.class_weight is None else torch.tensor(
                self.class_weight, dtype=torch.float32),
            persistent=False)
        # deferred re-weighting (reweighting.py), installed by
        # set_deferred_weights: class_weight_tensor until its iteration,
        # deferred_weight_tensor (its weights x class_weight) from then on
        self.deferred: Optional[DeferredReweighting] = None
        self.register_buffer('deferred_weight_tensor', None, persistent=False)
        if class_counts is not None and not self.requires_counts:
            raise ValueError(f'{type(self).__name__} takes no class_counts')
        if self.requires_counts and class_counts is None:
            raise ValueError(
                f'{type(self).__name__} needs class_counts: a list of '
                'per-class training counts or the statistics JSON written '
                'by tools/analysis_tools/class_stats.py')
        self.class_counts: Optional[np.ndarray] = None
        if class_counts is not None:
            self.class_counts = load_class_counts(
                class_counts, kind=count_type, field='class_counts')
        self._check_lengths(None)

    # ------------------------------------------------------------ checks
    @property
    def num_classes(self) -> Optional[int]:
        """Number of classes implied by ``class_counts`` (None without)."""
        return None if self.class_counts is None else len(self.class_counts)

    def _check_lengths(self, num_classes: Optional[int]) -> None:
        """Lengths of ``class_counts`` / ``class_weight`` against
        ``num_classes``, or against each other when it is None."""
        lengths = []
        if self.class_counts is not None:
            lengths.append(('class_counts', len(self.class_counts)))
        if self.class_weight is not None:
            lengths.append(('class_weight', len(self.class_weight)))
        if self.deferred is not None:
            lengths.append(('the deferred weights',
                            len(self.deferred.weights)))
        source = f'the model predicts {num_classes} classes'
        if num_classes is None and len(lengths) >= 2:
            num_classes = lengths[0][1]
            source = f'class_counts has {num_classes}'
        if num_classes is None:
            return
        for field, length in lengths:
            if length != num_classes:
                raise ValueError(f'{type(self).__name__}: {field} has '
                                 f'{length} entries but {source}')

    def check_num_classes(self, num_classes: int) -> None:
        """Raise a ValueError naming ``class_counts`` (or ``class_weight``)
        if its length differs from ``num_classes``; decode heads call this
        at build time. Without it the check runs at every forward on
        ``cls_score.shape[1]`` (python ints: no host sync)."""
        self._check_lengths(int(num_classes))

    # ----------------------------------------------------------- helpers
    def class_weights(self, cls_score: Tensor) -> Optional[Tensor]:
        """Per-class weights applied to the pixel loss (None: unweighted):
        ``class_weight``, or once deferred re-weighting is active its
        weights times ``class_weight``.

        Subclasses combine their own weights with these here.
        """
        weights = self.class_weight_tensor
        if self.deferred_active():
            weights = self.deferred_weight_tensor
        return None if weights is None else weights.to(cls_score.dtype)

    def deferred_active(self) -> bool:
        """Whether deferred re-weighting applies at the runner's current
        iteration (a python int from the message hub: no device read)."""
        return self.deferred is not None and self.deferred.active_now()

    def set_deferred_weights(self, start_iter: Optional[int], weights,
                             device=None, field: str = 'start_iter') -> None:
        """Weight the loss with ``weights`` (times ``class_weight``) from
        training iteration ``start_iter`` on (see :mod:`.reweighting`);
        ``start_iter=None`` removes the schedule.

        Args:
            start_iter: first 0-based iteration of the new weights.
            weights: (C,) per-class weights.
            device: where the weights live (default: where the loss's
                buffers are, CPU for a loss without any).
            field: the config field named in errors.
        """
        if start_iter is None:
            self.deferred = None
            self.deferred_weight_tensor = None
            return
        schedule = DeferredReweighting(start_iter, weights, field)
        combined = schedule.weights
        if self.class_weight is not None:
            if len(self.class_weight) != len(combined):
                raise ValueError(
                    f'{type(self).__name__}: the deferred weights have '
                    f'{len(combined)} entries but class_weight has '
                    f'{len(self.class_weight)}')
            combined = combined * np.asarray(self.class_weight)
        if device is None:
            device = next((b.device for b in self.buffers()), 'cpu')
        previous = self.deferred
        self.deferred = schedule
        try:
            self._check_lengths(None)
        except ValueError:
            self.deferred = previous
            raise
        self.deferred_weight_tensor = torch.tensor(
            combined, dtype=torch.float32, device=device)

    def register_class_buffer(self, name: str, values: np.ndarray) -> None:
        """Per-class constant derived from the counts, moved with the module
        (non-persistent: it comes from the config, not the checkpoint)."""
        self.register_buffer(
            name, torch.as_tensor(values, dtype=torch.float32),
            persistent=False)

    def pixel_loss(self, cls_score: Tensor, target: PixelTargets) -> Tensor:
        """Per-pixel loss (N, H, W), class weights applied, 0 if ignored."""
        raise NotImplementedError

    def mean_class_weights(self, cls_score: Tensor) -> Optional[Tensor]:
        """Per-class weights whose per-pixel sum is the denominator of
        ``reduction='mean'`` (None: count pixels). mmseg's convention: the
        weights applied to the loss (``class_weight``); losses whose own
        weights are part of the loss value (CB) override this."""
        return self.class_weights(cls_score)

    def default_avg_factor(self, cls_score: Tensor, target: PixelTargets):
        """Denominator of ``reduction='mean'``, as mmseg 1.x's
        ``cross_entropy``: the number of pixels (all, or non-ignored with
        ``avg_non_ignore``), or with class weights the sum of the pixels'
        weights. mmseg indexes the weights with the ignored label there
        (an IndexError for 255); here an ignored pixel counts 1 when
        ``avg_non_ignore=False``, so all-ones weights equal no weights.
        Stays a tensor: no host sync."""
        weights = self.mean_class_weights(cls_score)
        if weights is None:
            if self.avg_non_ignore:
                return target.valid.sum().to(cls_score.dtype)
            return target.label.numel()
        fill = 0.0 if self.avg_non_ignore else 1.0
        return target.gather(weights, fill).sum()

    def reduce(self, loss: Tensor, target: PixelTargets,
               weight: Optional[Tensor], reduction: str,
               avg_factor) -> Tensor:
        """mmseg's ``weight_reduce_loss``: element-wise ``weight``, then
        'none', 'sum', or the sum divided by ``avg_factor + eps``."""
        if weight is not None:
            loss = loss * weight.to(loss.dtype)
        if avg_factor is None:
            if reduction == 'mean':
                return loss.mean()
            return loss.sum() if reduction == 'sum' else loss
        if reduction == 'mean':
            return loss.sum() / (avg_factor + AVG_EPS)
        if reduction == 'none':
            return loss
        raise ValueError('avg_factor can not be used with reduction="sum"')

    # ----------------------------------------------------------- forward
    def forward(self,
                cls_score: Tensor,
                label: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor=None,
                reduction_override: Optional[str] = None,
                ignore_index: int = 255,
                **kwargs) -> Tensor:
        """Compute the loss.

        Args:
            cls_score: logits (N, C, H, W).
            label: labels (N, H, W) in ``0..C-1`` or ``ignore_index``.
            weight: optional per-pixel weight broadcastable to (N, H, W).
            avg_factor: denominator of the mean (overrides the default).
            reduction_override: 'none', 'mean' or 'sum'.
            ignore_index: label value excluded from loss and gradient.
        """
        if reduction_override not in (None, ) + REDUCTIONS:
            raise ValueError('reduction_override must be None or one of '
                             f'{REDUCTIONS}, got {reduction_override!r}')
        reduction = reduction_override or self.reduction
        self._check_lengths(cls_score.shape[1])
        if cls_score.dtype in (torch.float16, torch.bfloat16):
            # as autocast does for cross-entropy: soft-max statistics in fp32
            cls_score = cls_score.float()
        target = PixelTargets(label, ignore_index, cls_score.shape[1])
        check_label_values(type(self).__name__, target)
        loss = self.pixel_loss(cls_score, target)
        if reduction == 'mean' and avg_factor is None:
            avg_factor = self.default_avg_factor(cls_score, target)
        loss = self.reduce(loss, target, weight, reduction, avg_factor)
        return self.loss_weight * loss

    @property
    def loss_name(self) -> str:
        """Name of the loss item; ``loss_`` prefix makes mmseg back-prop it."""
        return self._loss_name

    def extra_repr(self) -> str:
        return (f'reduction={self.reduction!r}, '
                f'avg_non_ignore={self.avg_non_ignore}, '
                f'loss_weight={self.loss_weight}')
