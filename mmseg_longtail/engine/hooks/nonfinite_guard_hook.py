"""Stop (or skip the step) when a loss or a gradient is NaN or infinite."""
import logging
import os.path as osp
from typing import Dict, List

import torch
from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS

from mmseg_longtail.utils.run_files import write_stop_reason

ACTIONS = ('stop', 'skip')


class NonFiniteError(RuntimeError):
    """Training met a NaN / inf loss or gradient (``NonFiniteGuardHook``)."""


@HOOKS.register_module()
class NonFiniteGuardHook(Hook):
    """Guard against NaN / inf losses and gradients.

    mmseg's losses, like this package's, return NaN for NaN logits, and
    mmengine applies the step anyway: training goes on producing garbage.
    This hook checks, every iteration, the loss terms (after the model's
    ``parse_losses``) and, before the optimizer step, the gradients:

    * ``action='stop'`` (default): raise :class:`NonFiniteError` naming the
      non-finite loss term(s) (or the parameters whose gradient is not
      finite), the iteration and the work dir; the step is not applied, and
      the message is written to ``<work_dir>/nonfinite.json``
      (:func:`mmseg_longtail.utils.run_files.write_stop_reason`) so that
      the grid marks the cell failed with it.
    * ``action='skip'``: drop that step (gradients zeroed, no update, the
      learning rate schedule goes on), log a warning, and stop as above
      after ``max_skips`` skipped steps in a row.

    In DDP every rank decides on the all-reduced flag, so all ranks skip or
    stop together. Cost: one host sync per iteration (the decision), none
    inside a loss. Off with ``custom_hooks = []`` or ``enabled=False``.

    Args:
        action (str): ``'stop'`` or ``'skip'``.
        check_grads (bool): also check gradients before each step.
        max_skips (int): with ``'skip'``, consecutive skipped steps before
            stopping anyway.
        enabled (bool): False makes the hook a no-op (an override for
            configs that inherit it from the runtime base).
    """

    priority = 'VERY_HIGH'  # install the guards before other hooks run

    def __init__(self,
                 action: str = 'stop',
                 check_grads: bool = True,
                 max_skips: int = 10,
                 enabled: bool = True) -> None:
        if action not in ACTIONS:
            raise ValueError(f'NonFiniteGuardHook: action must be one of '
                             f'{ACTIONS}, got {action!r}')
        if int(max_skips) < 1:
            raise ValueError(f'NonFiniteGuardHook: max_skips must be >= 1, '
                             f'got {max_skips}')
        self.action = action
        self.check_grads = check_grads
        self.max_skips = int(max_skips)
        self.enabled = enabled
        self.skipped = 0  # consecutive skipped steps
        self._terms: Dict[str, torch.Tensor] = {}

    # ----------------------------------------------------------- install
    def before_train(self, runner) -> None:
        if not self.enabled:
            return
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        optim = runner.optim_wrapper
        wrappers = list(optim.values()) if hasattr(optim, 'optim_wrappers') \
            else [optim]
        parse = model.parse_losses

        def guarded_parse(losses):
            loss, log_vars = parse(losses)
            # keep the raw terms: the guard names the ones that went bad
            self._terms = {k: v for k, v in log_vars.items()
                           if 'loss' in k and torch.is_tensor(v)}
            return loss, log_vars

        model.parse_losses = guarded_parse
        for wrapper in wrappers:
            self._wrap(runner, wrapper)

    def _wrap(self, runner, wrapper) -> None:
        update, step = wrapper.update_params, wrapper.step

        def guarded_update(loss, *args, **kwargs):
            bad = self._bad_terms(loss)
            if bad:
                self._handle(runner, wrapper, 'loss ' + ', '.join(bad))
                return
            update(loss, *args, **kwargs)

        def guarded_step(*args, **kwargs):
            if self.check_grads:
                bad = self._bad_grads(wrapper)
                if bad:
                    self._handle(runner, wrapper,
                                 'gradient of ' + ', '.join(bad))
                    return
            self.skipped = 0
            step(*args, **kwargs)

        wrapper.update_params = guarded_update
        wrapper.step = guarded_step

    # ------------------------------------------------------------ checks
    @staticmethod
    def _any_rank(flag: bool, device) -> bool:
        t = torch.tensor([float(flag)], device=device)
        all_reduce(t)  # sum over ranks; a no-op in one process
        return bool(t.item() > 0)

    def _bad_terms(self, loss: torch.Tensor) -> List[str]:
        local = not bool(torch.isfinite(loss.detach()).all())
        if not self._any_rank(local, loss.device):
            return []
        bad = [k for k, v in self._terms.items()
               if not bool(torch.isfinite(v.detach()).all())]
        # a finite-looking rank names what another rank reported
        return bad or (['total (on another rank)'] if not local else
                       ['total'])

    @staticmethod
    def _bad_grads(wrapper) -> List[str]:
        grads, names = [], []
        for group in wrapper.optimizer.param_groups:
            for p in group['params']:
                if p.grad is not None:
                    grads.append(p.grad.detach())
                    names.append(p)
        if not grads:
            return []
        norms = torch.stack(torch._foreach_norm(grads))
        finite = torch.isfinite(norms)
        if not NonFiniteGuardHook._any_rank(not bool(finite.all()),
                                            norms.device):
            return []
        bad = (~finite).nonzero().flatten().tolist()
        return [f'parameter #{i} {tuple(names[i].shape)}'
                for i in bad[:5]] or ['a parameter on another rank']

    # ------------------------------------------------------------ acting
    def _handle(self, runner, wrapper, what: str) -> None:
        it = runner.iter + 1  # 1-based, as the log prints it
        if self.action == 'skip' and self.skipped < self.max_skips:
            self.skipped += 1
            wrapper.zero_grad()
            print_log(
                f'NonFiniteGuardHook: non-finite {what} at iteration {it}; '
                f'step skipped ({self.skipped} in a row, stop after '
                f'{self.max_skips})', logger='current',
                level=logging.WARNING)
            return
        reason = (f'non-finite {what} at iteration {it} (work dir '
                  f'{osp.abspath(runner.work_dir)})')
        if self.action == 'skip':
            reason += f' after {self.skipped} skipped steps in a row'
        if runner.rank == 0:
            write_stop_reason(runner.work_dir, reason)
        raise NonFiniteError(f'NonFiniteGuardHook: {reason}')
