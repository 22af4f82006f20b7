"""Deferred re-weighting (DRW) as a schedule over the runner's iteration.

Cao et al. (NeurIPS 2019) train with plain weights first and switch to
class-balanced weights for the last part of the schedule. Here the switch
is a pure function of the training iteration that mmengine's
``RuntimeInfoHook`` writes into the message hub before every iteration
(runtime info ``'iter'``, the 0-based index of the iteration about to run,
restored by ``--resume``): no counter lives in a loss or a hook, so a
resumed run switches at the same iteration as an uninterrupted one.

Used by :class:`~mmseg_longtail.models.losses.base.LongTailLoss`
(``set_deferred_weights``; ``LDAMLoss(drw_start_iter=...)`` installs one on
itself) and by :class:`~mmseg_longtail.engine.DeferredReweightHook`, which
installs one on every loss of a model.
"""
from dataclasses import dataclass
from typing import Optional

import numpy as np
from mmengine.logging import MessageHub


def current_train_iter() -> Optional[int]:
    """The runner's current training iteration (0-based), or None outside
    a training run. A python int from the message hub: no device read."""
    cur = MessageHub.get_current_instance().get_info('iter')
    return None if cur is None else int(cur)


@dataclass(frozen=True)
class DeferredReweighting:
    """Weights ``weights`` from training iteration ``start_iter`` on.

    Attributes:
        start_iter: first (0-based) iteration that uses the weights: the
            iterations ``0 .. start_iter - 1`` keep the loss's own weights.
        weights: (C,) finite, non-negative per-class weights.
        field: the config field named in errors.
    """
    start_iter: int
    weights: np.ndarray
    field: str = 'start_iter'

    def __post_init__(self) -> None:
        if isinstance(self.start_iter, bool) or not isinstance(
                self.start_iter, (int, np.integer)) or self.start_iter < 0:
            raise ValueError(f'{self.field} must be an int >= 0, got '
                             f'{self.start_iter!r}')
        weights = np.asarray(self.weights, dtype=np.float64)
        if weights.ndim != 1 or weights.size == 0:
            raise ValueError('deferred weights must be a non-empty 1-D list, '
                             f'got shape {weights.shape}')
        if not np.all(np.isfinite(weights)) or (weights < 0).any():
            raise ValueError('deferred weights must be finite and '
                             f'non-negative, got {weights.tolist()}')
        object.__setattr__(self, 'weights', weights)

    def active(self, iteration: Optional[int]) -> bool:
        """Whether ``iteration`` (None: not training) uses the weights."""
        return iteration is not None and iteration >= self.start_iter

    def active_now(self) -> bool:
        """:meth:`active` at the message hub's current iteration."""
        return self.active(current_train_iter())
