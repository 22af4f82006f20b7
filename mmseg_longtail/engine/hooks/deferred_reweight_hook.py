"""Deferred re-weighting (DRW) for any class-weighted loss, as a hook."""
import logging
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS
from torch import nn

from mmseg_longtail.models.losses.base import (LongTailLoss,
                                               effective_number_weights,
                                               load_class_weight,
                                               resolve_beta,
                                               warn_if_near_uniform)
from mmseg_longtail.models.losses.reweighting import DeferredReweighting
from mmseg_longtail.utils.class_stats import load_class_counts


def head_losses(model: nn.Module) -> List[Tuple[nn.Module, nn.Module]]:
    """``(head, loss)`` for every loss in every ``loss_decode`` of the
    model (decode and auxiliary heads, cascades included)."""
    found = []
    for module in model.modules():
        losses = getattr(module, 'loss_decode', None)
        if not isinstance(losses, nn.Module):
            continue
        if not isinstance(losses, nn.ModuleList):
            losses = [losses]
        found += [(module, loss) for loss in losses]
    return found


@HOOKS.register_module()
class DeferredReweightHook(Hook):
    """Deferred re-weighting (Cao et al., NeurIPS 2019) for any loss.

    The training iterations ``0 .. start_iter - 1`` (0-based, the runner's
    ``iter``) use each loss's own weights; from ``start_iter`` on the
    losses are weighted per class by ``weights`` (times their own
    ``class_weight``, if any). The weights are either

    * ``class_weight``: anything a loss's ``class_weight`` takes: a list, a
      weight file, or ``'<stats.json>:<generator>'`` (``mfb``, ``enet``,
      ``inverse``, ``sqrt_inverse``;
      :mod:`mmseg_longtail.utils.class_weights`);
    * ``class_counts`` (+ ``beta``, ``count_type``): the class-balanced
      effective-number weights of Cui et al. (the paper's DRW), as in
      ``ClassBalancedLoss`` (``beta='median'`` allowed).

    The switch is a function of the iteration, never of hook state, so it
    survives ``--resume``: this package's losses get the schedule installed
    once (:mod:`mmseg_longtail.models.losses.reweighting`; they read the
    iteration from the message hub at each forward, as ``LDAMLoss``'s own
    ``drw_start_iter`` does, which this hook replaces when both are set);
    any other loss with a ``class_weight`` attribute (mmseg's
    ``CrossEntropyLoss``, ``FocalLoss``, ``LovaszLoss``) gets it set before
    every iteration from ``runner.iter``.

    Args:
        start_iter (int): first 0-based iteration of the new weights.
        class_weight (list | str, optional): the weights (see above).
        class_counts (list | str, optional): counts for effective-number
            weights (a list or the statistics JSON); exclusive with
            ``class_weight``.
        beta (float | str): effective-number beta. Default: 0.9999.
        count_type (str): ``'pixel'`` or ``'image'`` counts of the JSON.
        loss_names (list[str], optional): only the losses with these
            ``loss_name``; default every loss of every head.
    """

    priority = 'NORMAL'  # after RuntimeInfoHook (VERY_HIGH) sets the iter

    def __init__(self,
                 start_iter: int,
                 class_weight: Union[str, Sequence[float], None] = None,
                 class_counts: Union[str, Sequence[float], None] = None,
                 beta: Union[float, str] = 0.9999,
                 count_type: str = 'pixel',
                 loss_names: Optional[Sequence[str]] = None) -> None:
        if (class_weight is None) == (class_counts is None):
            raise ValueError('DeferredReweightHook: give exactly one of '
                             'class_weight (list, file or '
                             "'stats.json:<generator>') and class_counts "
                             '(effective-number weights)')
        if class_counts is not None:
            counts = load_class_counts(class_counts, kind=count_type,
                                       field='class_counts')
            beta = resolve_beta(beta, counts, 'beta')
            weights = effective_number_weights(counts, beta, 'beta')
            warn_if_near_uniform(weights, counts, beta, count_type, 'beta')
            self.field = 'class_counts'
        else:
            weights = load_class_weight(class_weight)
            self.field = 'class_weight'
        self.schedule = DeferredReweighting(start_iter, weights,
                                            'start_iter')
        if isinstance(loss_names, str):
            loss_names = [loss_names]
        self.loss_names = None if loss_names is None else set(loss_names)
        # (loss, its own class_weight, its deferred weights) of the losses
        # outside this package; config-derived, not schedule state
        self._attribute_losses: list = []

    @property
    def start_iter(self) -> int:
        return self.schedule.start_iter

    def _targets(self, model: nn.Module) -> List[Tuple[nn.Module,
                                                       nn.Module]]:
        found = head_losses(model)
        if self.loss_names is not None:
            names = {getattr(loss, 'loss_name', None) for _, loss in found}
            missing = self.loss_names - names
            if missing:
                raise ValueError(
                    f'DeferredReweightHook: loss_names {sorted(missing)} '
                    'not in the model (its losses: '
                    f'{sorted(map(str, names))})')
            found = [(h, loss) for h, loss in found
                     if getattr(loss, 'loss_name', None) in self.loss_names]
        if not found:
            raise ValueError('DeferredReweightHook: the model has no head '
                             'with loss_decode to re-weight')
        return found

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        weights = self.schedule.weights
        device = next((p.device for p in model.parameters()), None)
        self._attribute_losses = []
        for head, loss in self._targets(model):
            name = getattr(loss, 'loss_name', type(loss).__name__)
            num_classes = getattr(head, 'num_classes', len(weights))
            if len(weights) != num_classes:
                raise ValueError(
                    f'DeferredReweightHook: {self.field} gives '
                    f'{len(weights)} weights but {type(head).__name__} '
                    f'predicts {num_classes} classes')
            if isinstance(loss, LongTailLoss):
                loss.set_deferred_weights(self.start_iter, weights, device,
                                          'start_iter')
            elif hasattr(loss, 'class_weight'):
                if type(loss).__name__ == 'CrossEntropyLoss':
                    print_log(
                        'DeferredReweightHook: mmseg 1.2.2\'s '
                        'CrossEntropyLoss with class_weight indexes the '
                        'weights with the ignore label (IndexError on '
                        'batches with ignored pixels); SoftmaxFocalLoss '
                        'with gamma=0 is the same CE without that bug',
                        logger='current', level=logging.WARNING)
                plain = loss.class_weight
                deferred = weights if plain is None else weights * np.asarray(
                    plain, dtype=np.float64)
                self._attribute_losses.append(
                    (loss, plain, deferred.tolist()))
            elif self.loss_names is not None:
                raise ValueError(f'DeferredReweightHook: {name} '
                                 f'({type(loss).__name__}) has no '
                                 'class_weight to defer')
            else:
                print_log(f'DeferredReweightHook: {name} '
                          f'({type(loss).__name__}) takes no class weights; '
                          'left unchanged', logger='current',
                          level=logging.WARNING)
                continue
            print_log(f'DeferredReweightHook: {name} uses weights '
                      f'{np.round(weights, 4).tolist()} from iteration '
                      f'{self.start_iter} (0-based) on', logger='current')

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        active = self.schedule.active(runner.iter)
        for loss, plain, deferred in self._attribute_losses:
            loss.class_weight = deferred if active else plain
