"""PreemptionHook: SIGUSR1 (or SIGTERM) sent to a training process makes it
finish the iteration, write that iteration's checkpoint and exit with 75
(Ctrl-C, SIGINT: the same with 130; a second Ctrl-C aborts at once); in
two gloo processes a signal to one rank stops both at the same iteration.
Resumed from that checkpoint, the run ends with the uninterrupted run's
weights (with ExactResumeHook). The SLURM round trip (warning signal,
requeue, automatic resume) is in tests/test_experiments/test_slurm.py."""
import os
import signal
from pathlib import Path

import pytest

from mmseg_longtail.engine.hooks import PREEMPTED_EXIT_CODE, PreemptionHook
from mmseg_longtail.engine.hooks.preemption_hook import INTERRUPTED_EXIT_CODE
from tests.fault_runs import (final_checkpoint, finish, last_checkpoint_name,
                              prestart, same_state, start_training, train,
                              wait_until, write_config)

# the fork servers of the runs import while pytest collects the tests
prestart(0, 1)

ITERS = 12
HOOKS = [dict(type='ExactResumeHook'), dict(type='PreemptionHook')]
# slows training down so that the signal lands while it runs
SLOW = [dict(type='ProgressHook', delay=0.3)]


def progress(work: Path, rank: int):
    """(pid, iterations done) of a rank, None before its first iteration."""
    path = work / f'progress_rank{rank}.txt'
    if not path.is_file():
        return None
    pid, it = path.read_text().split()
    return int(pid), int(it)


def signal_while_training(tmp_path, procs: int, signum: int, rank: int,
                          after: int = 4):
    """Start training, send ``signum`` to rank ``rank``'s process once it
    has done ``after`` iterations, and return (exit status, output, work
    dir, the iteration each rank had done when the run stopped)."""
    work = tmp_path / 'run'
    cfg = write_config(tmp_path / 'slow.py', HOOKS + SLOW, ITERS)
    proc = start_training(cfg, work, procs)
    try:
        pid, _ = wait_until(
            lambda: (progress(work, rank) or (0, 0))[1] >= after
            and progress(work, rank), proc, what=f'iteration {after}')
        os.kill(pid, signum)
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    stopped = [progress(work, r)[1] for r in range(procs)]
    return proc.returncode, out, work, stopped


def assert_resumes_bit_exact(tmp_path, work: Path, stopped: int,
                             procs: int) -> None:
    """Resumed from the checkpoint of iteration ``stopped``, the run ends
    with the weights of an uninterrupted run in ``procs`` processes (which
    trains beside it, from another fork server: another hash seed)."""
    cfg = write_config(tmp_path / 'fast.py', HOOKS, ITERS)
    ref = tmp_path / 'ref'
    prestart(0, 1)
    reference = start_training(cfg, ref, procs, slot=1)
    try:
        resumed = train(cfg, work, procs, resume=True).stdout
        assert f'resumed epoch: 0, iter: {stopped}' in resumed
    finally:
        finish(reference)
    assert same_state(final_checkpoint(ref, ITERS),
                      final_checkpoint(work, ITERS))


def stopped_state(work: Path, stopped: int):
    """(last checkpoint's name, the iteration in the checkpoint of
    ``stopped``, files left under temporary names) of a stopped run."""
    return (last_checkpoint_name(work),
            final_checkpoint(work, stopped)['meta']['iter'],
            list(work.glob('*.tmp*')))


@pytest.fixture(scope='module')
def ctrl_c_run(tmp_path_factory):
    """One 1-process run stopped with SIGINT, for the signal test's SIGINT
    case and the Ctrl-C test (which resumes it): signal_while_training's
    answer and the stopped run's ``stopped_state``, taken before."""
    rc, out, work, (stopped, ) = signal_while_training(
        tmp_path_factory.mktemp('ctrl_c'), 1, signal.SIGINT, rank=0)
    return rc, out, work, stopped, stopped_state(work, stopped)


@pytest.mark.parametrize('signum, code', [
    (signal.SIGUSR1, PREEMPTED_EXIT_CODE), (signal.SIGTERM,
                                            PREEMPTED_EXIT_CODE),
    (signal.SIGINT, INTERRUPTED_EXIT_CODE)
], ids=['SIGUSR1', 'SIGTERM', 'SIGINT'])
def test_signal_checkpoints_and_exits_for_requeue(request, tmp_path, signum,
                                                  code):
    if signum == signal.SIGINT:  # the same run as the Ctrl-C test's
        rc, out, _, stopped, state = request.getfixturevalue('ctrl_c_run')
    else:
        rc, out, work, (stopped, ) = signal_while_training(
            tmp_path, 1, signum, rank=0)
        state = stopped_state(work, stopped)
    assert rc == code, out[-3000:]
    assert 4 <= stopped < ITERS
    name = signal.Signals(signum).name
    assert (f'PreemptionHook: {name} received; stopped after iteration '
            f'{stopped} with checkpoint') in out
    last, ckpt_iter, temporary = state
    # the checkpoint of the iteration it stopped at, found by --resume
    assert last == f'iter_{stopped}.pth'
    assert ckpt_iter == stopped
    assert not temporary  # written under a temporary name


def test_ctrl_c_resumes_bit_exact(tmp_path, ctrl_c_run):
    """Ctrl-C (SIGINT) loses nothing: resumed from the checkpoint it wrote,
    the run ends with the uninterrupted run's weights."""
    rc, out, work, stopped, _ = ctrl_c_run
    assert rc == INTERRUPTED_EXIT_CODE, out[-3000:]
    assert 'Traceback' not in out
    assert_resumes_bit_exact(tmp_path, work, stopped, 1)


def test_second_ctrl_c_aborts_at_once():
    hook = PreemptionHook()
    try:
        hook._handle(signal.SIGINT, None)
        assert hook.received == signal.SIGINT  # first: stop after the step
        with pytest.raises(KeyboardInterrupt):
            hook._handle(signal.SIGINT, None)
        # the handlers are back: nothing of the hook is left installed
        assert signal.getsignal(signal.SIGINT) is not hook._handle
    finally:
        hook._restore()


def test_two_processes_agree_and_resume_bit_exact(tmp_path):
    """SIGUSR1 to rank 1 only: both ranks stop after the same iteration
    (the all-reduced flag), and the run resumed from that checkpoint ends
    with the weights of the uninterrupted two-process run."""
    rc, out, work, stopped = signal_while_training(
        tmp_path, 2, signal.SIGUSR1, rank=1)
    # torchrun exits 1 and names its workers' exit status
    assert rc != 0 and 'exitcode  : 75' in out, out[-3000:]
    assert stopped[0] == stopped[1] and 4 <= stopped[0] < ITERS, stopped
    assert last_checkpoint_name(work) == f'iter_{stopped[0]}.pth'
    assert (f'stopped after iteration {stopped[0]} with checkpoint') in out
    assert_resumes_bit_exact(tmp_path, work, stopped[0], 2)


@pytest.mark.parametrize('kwargs,match', [
    (dict(signals=['SIGFOO']), "signals: unknown signal 'SIGFOO'"),
    (dict(signals=[]), 'signals is empty'),
    (dict(exit_code=0), 'exit_code must be an integer in 1..255'),
    (dict(interrupt_exit_code=256), 'interrupt_exit_code must be an '
     'integer'),
])
def test_bad_options_name_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PreemptionHook(**kwargs)


def test_handlers_come_back_after_the_run():
    before = signal.getsignal(signal.SIGUSR1)
    hook = PreemptionHook(signals=['SIGUSR1'])
    assert signal.getsignal(signal.SIGUSR1) == hook._handle
    hook.after_run(None)
    assert signal.getsignal(signal.SIGUSR1) == before
    off = PreemptionHook(enabled=False)
    assert signal.getsignal(signal.SIGUSR1) == before and not off._previous
