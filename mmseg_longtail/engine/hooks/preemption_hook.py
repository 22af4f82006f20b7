"""Checkpoint and stop on a scheduler's warning signal, for a requeue."""
import logging
import os.path as osp
import signal
import threading
from typing import Optional, Sequence

import torch
from mmengine.dist import all_reduce, barrier, is_distributed
from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

from mmseg_longtail.utils.run_files import atomic_write_text

# EX_TEMPFAIL (sysexits.h): "try again later", what a requeue means. The
# SLURM wrappers (tools/slurm/preemptible.sh) requeue a job on this code.
PREEMPTED_EXIT_CODE = 75
# Ctrl-C: the shell's code for SIGINT; not requeued by the SLURM wrappers
INTERRUPTED_EXIT_CODE = 130


class TrainingPreempted(SystemExit):
    """Raised by :class:`PreemptionHook` after its checkpoint is written;
    the process exits with the hook's ``exit_code``."""


def _signal_number(name) -> int:
    try:
        return int(getattr(signal, name) if isinstance(name, str) else
                   signal.Signals(name))
    except (AttributeError, ValueError):
        raise ValueError(f'PreemptionHook: signals: unknown signal {name!r} '
                         "(names such as 'SIGUSR1', 'SIGTERM')") from None


@HOOKS.register_module()
class PreemptionHook(Hook):
    """Write a checkpoint and stop when the scheduler announces the end.

    SLURM sends a warning signal before a time limit or a preemption
    (``sbatch --signal=B:USR1@<seconds>``; a preemption with grace time
    sends SIGTERM). On one of ``signals`` this hook lets the current
    iteration finish, makes every rank agree on the iteration to stop at
    (an all-reduce of the flag after each iteration: ranks may see the
    signal at different times), writes a checkpoint of that iteration
    through the runner's ``CheckpointHook`` (``iter_<N>.pth`` and
    ``last_checkpoint``, kept like its periodic ones; ``SafeCheckpointRunner``
    writes it under a temporary name and renames it), waits
    until it is on disk, and exits every rank with ``exit_code``.
    ``tools/slurm_train.sh`` and the grid's job arrays then requeue the job,
    and the requeued job resumes from that checkpoint (``--resume``); with
    :class:`ExactResumeHook` the result is the uninterrupted run's, bit for
    bit.

    The handlers are installed when the hook is built, before the data
    loader's workers are forked, so that the workers (which SLURM signals
    too) inherit them instead of dying; with ``mp_start_method='spawn'``
    they do not. They only set a flag; the previous handlers come back
    after the run. Cost: one all-reduce of one number per iteration in
    distributed runs (none in one process). Made for iteration-based loops
    (every config of this package): mmengine resumes an epoch-based loop at
    the start of the interrupted epoch.

    Ctrl-C (SIGINT) is handled the same way: the run stops after the
    current iteration with its checkpoint and exits with
    ``interrupt_exit_code`` (130, the shell's code for Ctrl-C, which the
    SLURM wrappers do not requeue); ``--resume`` continues from it. A second
    Ctrl-C aborts at once (KeyboardInterrupt, no checkpoint).

    Args:
        signals (Sequence[str | int]): the signals that request a stop.
        exit_code (int): the exit status after the checkpoint (75,
            EX_TEMPFAIL, is what the SLURM wrappers requeue on).
        interrupt_exit_code (int): the exit status after a SIGINT's
            checkpoint.
        enabled (bool): False makes the hook a no-op (an override for
            configs that inherit it from the runtime base).
    """

    priority = 'LOWEST'  # after the iteration's own checkpoint and logging

    def __init__(self,
                 signals: Sequence = ('SIGUSR1', 'SIGTERM', 'SIGINT'),
                 exit_code: int = PREEMPTED_EXIT_CODE,
                 interrupt_exit_code: int = INTERRUPTED_EXIT_CODE,
                 enabled: bool = True) -> None:
        if isinstance(signals, (str, int)):
            signals = [signals]
        self.signals = [_signal_number(s) for s in signals]
        if not self.signals:
            raise ValueError('PreemptionHook: signals is empty; use '
                             'enabled=False to turn the hook off')
        for field, code in (('exit_code', exit_code),
                            ('interrupt_exit_code', interrupt_exit_code)):
            if not isinstance(code, int) or not 1 <= code <= 255:
                raise ValueError(f'PreemptionHook: {field} must be an '
                                 f'integer in 1..255, got {code!r}')
        self.exit_code = exit_code
        self.interrupt_exit_code = interrupt_exit_code
        self.enabled = enabled
        self.received: Optional[int] = None
        self._previous = {}
        if enabled:
            self._install()

    # ------------------------------------------------------------ signals
    def _handle(self, signum, frame) -> None:
        if self.received is None:
            self.received = signum
        elif signum == signal.SIGINT:
            # a second Ctrl-C: stop now, without the checkpoint
            self._restore()
            raise KeyboardInterrupt

    def _install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            print_log('PreemptionHook: not in the main thread, so no signal '
                      'handler can be installed; the hook is off',
                      logger='current', level=logging.WARNING)
            return
        for s in self.signals:
            self._previous[s] = signal.signal(s, self._handle)

    def _restore(self) -> None:
        for s, previous in self._previous.items():
            signal.signal(s, previous)
        self._previous = {}

    def after_run(self, runner) -> None:
        self._restore()

    # --------------------------------------------------------------- stop
    def _agreed(self) -> Optional[int]:
        """The signal some rank received (the same answer on every rank),
        or None."""
        if not is_distributed():
            return self.received
        flag = torch.tensor([self.received or 0], dtype=torch.int64)
        all_reduce(flag, op='max')
        return int(flag[0]) or None

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if not self._previous:
            return
        signum = self._agreed()
        if signum is None:
            return
        step = runner.iter + 1  # iterations done, as checkpoints count them
        path = self._checkpoint(runner, step)
        barrier()  # every rank exits once the file is on disk
        name = signal.Signals(signum).name
        if signum == signal.SIGINT:
            code, then = self.interrupt_exit_code, (
                '--resume continues from it')
        else:
            code, then = self.exit_code, (
                'so that the job is requeued and resumed from it')
        message = (f'PreemptionHook: {name} received; stopped after '
                   f'iteration {step} with checkpoint {path}; exiting with '
                   f'{code}; {then}')
        print_log(message, logger='current', level=logging.WARNING)
        self._restore()
        raise TrainingPreempted(code)

    @staticmethod
    def _checkpoint(runner, step: int) -> str:
        """Path of the checkpoint of iteration ``step``, written unless the
        periodic checkpoint of this iteration already was."""
        hooks = [h for h in runner.hooks if isinstance(h, CheckpointHook)]
        if hooks and not hooks[0].by_epoch:
            hook = hooks[0]
            last = runner.message_hub.get_info('last_ckpt')
            name = hook.filename_tmpl.format(step)
            if not (last and osp.basename(last) == name):
                hook._save_checkpoint(runner)  # iter_<step>.pth, kept as usual
            return runner.message_hub.get_info('last_ckpt')
        # no iteration checkpoint hook: write one where --resume looks
        name = f'iter_{step}.pth'
        runner.save_checkpoint(runner.work_dir, name,
                               meta=dict(epoch=runner.epoch, iter=step))
        path = osp.join(runner.work_dir, name)
        if is_main_process():
            atomic_write_text(osp.join(runner.work_dir, 'last_checkpoint'),
                              path)
        return path
