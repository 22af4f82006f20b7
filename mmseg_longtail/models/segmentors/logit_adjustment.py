"""Post-hoc logit adjustment (Menon et al., ICLR 2021) at test time.

A trained model's final logits ``z`` (per pixel, at the image's original
size: what mmseg stores as ``seg_logits``) are turned into predictions
``argmax_c (z_c - tau * log pi_c)`` with ``pi`` the class prior of the
training split (from the class statistics). ``tau = 1`` is the
Bayes-optimal correction for a model trained with plain CE under the
balanced error; other values trade head for tail accuracy
(``tools/analysis_tools/logit_adjust_sweep.py`` finds the best on a
validation split in one pass).

It lives at the segmentor, in ``postprocess_result``, because that is where
mmseg takes the argmax, after padding removal, flip and the resize to the
original size; adjusting the head's low-resolution logits instead would
change the bilinear resize's rounding and not give ``argmax(z - tau log pi)``
of the stored logits exactly. ``seg_logits`` stay the raw ``z``; only
``pred_sem_seg`` changes, and ``tau = 0`` (or no ``logit_adjust`` in
``test_cfg``) leaves the plain model's outputs untouched, bit for bit.
"""
from dataclasses import dataclass
from typing import Optional, Sequence, Type, Union

import numpy as np
import torch
from mmengine.structures import PixelData
from mmseg.models.segmentors import CascadeEncoderDecoder, EncoderDecoder
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.registry import MODELS
from torch import Tensor

from mmseg_longtail.utils.class_stats import class_prior, load_class_counts

FIELD = 'test_cfg.logit_adjust'


@dataclass(frozen=True)
class LogitAdjustment:
    """``argmax(z - tau * log pi)`` over dim 0 (classes) of ``z``.

    Attributes:
        tau: adjustment strength; 0 is the plain argmax.
        log_prior: (C,) float32 ``log pi`` (zero counts clamped to 1, so it
            stays finite).
    """
    tau: float
    log_prior: Tensor

    @classmethod
    def from_counts(cls, counts: Union[str, Sequence[float]], tau: float,
                    count_type: str = 'pixel',
                    num_classes: Optional[int] = None,
                    field: str = FIELD) -> 'LogitAdjustment':
        """From a count list or statistics JSON; errors name ``field``."""
        try:
            tau = float(tau)
        except (TypeError, ValueError):
            raise ValueError(f'{field}.tau must be a number, got '
                             f'{tau!r}') from None
        if not np.isfinite(tau):
            raise ValueError(f'{field}.tau must be finite, got {tau}')
        values = load_class_counts(counts, num_classes, kind=count_type,
                                   field=f'{field}.class_counts')
        log_prior = torch.from_numpy(np.log(class_prior(values))).float()
        return cls(tau, log_prior)

    def shift(self, like: Tensor) -> Tensor:
        """``tau * log pi`` as (C, 1, 1) on ``like``'s device and dtype."""
        return (self.tau * self.log_prior).to(like).view(-1, 1, 1)

    def predict(self, seg_logits: Tensor) -> Tensor:
        """(1, H, W) prediction from (C, H, W) logits."""
        if self.tau == 0:
            return seg_logits.argmax(dim=0, keepdim=True)
        return (seg_logits - self.shift(seg_logits)).argmax(dim=0,
                                                            keepdim=True)


class LogitAdjustMixin:
    """Adds ``test_cfg.logit_adjust`` to a segmentor.

    Put it first in the bases: ``class X(LogitAdjustMixin, EncoderDecoder)``.
    ``test_cfg.logit_adjust`` is a dict with ``class_counts`` (a list or the
    statistics JSON of the training split), ``tau`` (default 1.0) and
    ``count_type`` (``'pixel'``, default, or ``'image'``); absent or None:
    the plain segmentor. Checked at build time (errors name the field).
    The state dict is the plain segmentor's (the prior is not saved), so
    checkpoints load both ways.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.logit_adjustment: Optional[LogitAdjustment] = None
        cfg = (self.test_cfg or {}).get('logit_adjust')
        if cfg is None:
            return
        if not isinstance(cfg, dict) or 'class_counts' not in cfg:
            raise ValueError(f'{FIELD} must be a dict with class_counts '
                             '(the statistics JSON of the training split or '
                             f'a count list), got {cfg!r}')
        unknown = set(cfg) - {'class_counts', 'tau', 'count_type'}
        if unknown:
            raise ValueError(f'{FIELD}: unknown keys {sorted(unknown)}; '
                             "takes class_counts, tau, count_type")
        self.logit_adjustment = LogitAdjustment.from_counts(
            cfg['class_counts'], cfg.get('tau', 1.0),
            cfg.get('count_type', 'pixel'), self.num_classes)

    def postprocess_result(self, seg_logits: Tensor, data_samples=None):
        samples = super().postprocess_result(seg_logits, data_samples)
        adjust = self.logit_adjustment
        if adjust is None or adjust.tau == 0 or seg_logits.shape[1] == 1:
            return samples  # the plain model's outputs, untouched
        for sample in samples:  # one image at a time, as mmseg does
            sample.pred_sem_seg = PixelData(
                data=adjust.predict(sample.seg_logits.data))
        return samples


def with_logit_adjustment(segmentor_cls: Type[BaseSegmentor],
                          register: bool = True) -> Type[BaseSegmentor]:
    """``LogitAdjusted<Name>`` = :class:`LogitAdjustMixin` +
    ``segmentor_cls`` (registered in mmseg's MODELS unless
    ``register=False``), for segmentors not listed here."""
    cls = type(f'LogitAdjusted{segmentor_cls.__name__}',
               (LogitAdjustMixin, segmentor_cls), {
                   '__doc__': f'{segmentor_cls.__name__} with post-hoc logit '
                              'adjustment (see :class:`LogitAdjustMixin`).',
                   '__module__': __name__,
               })
    if register:
        MODELS.register_module(module=cls)
    return cls


LogitAdjustedEncoderDecoder = with_logit_adjustment(EncoderDecoder)
LogitAdjustedCascadeEncoderDecoder = with_logit_adjustment(
    CascadeEncoderDecoder)
