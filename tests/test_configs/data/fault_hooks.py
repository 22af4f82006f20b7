"""Test-only hooks for the fault-tolerance tests (kill, preempt, resume).
Imported through ``custom_imports`` (the repository root on PYTHONPATH).

``KillAtIterHook``: the process kills itself with SIGKILL after iteration
``at`` (after that iteration's checkpoint, if any, was written), as a crashed
job ends: no hook, handler or ``finally`` runs.

``ProgressHook``: after every iteration each rank rewrites
``<work_dir>/progress_rank<r>.txt`` with ``<pid> <iterations done>`` and then
sleeps ``delay`` seconds, so that a test can signal one rank's process while
it trains and see where every rank stopped.
"""
import os
import os.path as osp
import signal
import time

from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class KillAtIterHook(Hook):

    priority = 'LOWEST'  # after the checkpoint hook of the same iteration

    def __init__(self, at: int) -> None:
        self.at = at

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if runner.iter + 1 == self.at:
            os.kill(os.getpid(), signal.SIGKILL)


@HOOKS.register_module()
class ProgressHook(Hook):

    priority = 'LOW'  # before PreemptionHook (LOWEST) of the same iteration

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        path = osp.join(runner.work_dir, f'progress_rank{get_rank()}.txt')
        with open(path + '.tmp', 'w') as f:
            f.write(f'{os.getpid()} {runner.iter + 1}\n')
        os.replace(path + '.tmp', path)
        time.sleep(self.delay)
