"""ExactResumeHook: a run killed with SIGKILL after a checkpoint and resumed
with ``tools/train.py --resume`` ends with exactly the weights, BN statistics
and momenta of the uninterrupted run, in one process (with and without data
loader workers) and in two gloo processes; without the hook it does not (so
the comparison can fail). The config trains with dropout, random flips, a
shuffled sampler and evaluations between checkpoints (tests/fault_runs.py)."""
import numpy as np
import pytest
import torch

from mmseg_longtail.engine.hooks import ExactResumeHook
from mmseg_longtail.engine.hooks.exact_resume_hook import (derived_seed,
                                                           reseed_all)
from tests.fault_runs import (final_checkpoint, finish, last_checkpoint_name,
                              prestart, same_state, start_training, train,
                              write_config)

# the fork servers of the runs import while pytest collects the tests
prestart(0, 1)

# checkpoints at 3 and 6, evaluations at 2, 4 and 6: a kill at 5 falls
# between the checkpoints and after an evaluation, and the resumed run from
# 3 evaluates at 4 and 6
ITERS = 6


# LDAM with deferred re-weighting switching on at iteration 4 (between the
# checkpoint at 3 and the kill at 5) plus BLV, whose logit noise comes from
# torch's generator: loss state a resume must get right
LOSSES = """
counts = [4000, 2000, 800, 200, 50]
model = dict(decode_head=dict(loss_decode=[
    dict(type='LDAMLoss', class_counts=counts, s=1.0, drw_start_iter=4,
         drw_beta=0.999),
    dict(type='BLVLoss', class_counts=counts, sigma=4.0, loss_weight=0.5)]))
"""


def _kill_and_resume(tmp_path, workers, kill, procs, hook=True, extra=''):
    """(uninterrupted final checkpoint, killed-and-resumed one)."""
    hooks = [dict(type='ExactResumeHook', enabled=hook)]
    kill_hook = [dict(type='KillAtIterHook', at=kill)]
    ref, run = tmp_path / 'ref', tmp_path / 'run'
    # the uninterrupted run trains beside the killed one, from another fork
    # server (another hash seed) than the killed and the resumed run
    prestart(0, 1)
    reference = start_training(
        write_config(tmp_path / 'ref.py', hooks, ITERS, workers, extra), ref,
        procs, slot=1)
    try:
        # SIGKILL: -9 from one process; torchrun reports its workers' deaths
        proc = train(write_config(tmp_path / 'killed.py', hooks + kill_hook,
                                  ITERS, workers, extra), run, procs,
                     expect=None)
        assert procs > 1 or proc.returncode == -9, proc.stdout[-3000:]
        assert last_checkpoint_name(run) == f'iter_{kill // 3 * 3}.pth'
        assert not (run / f'iter_{ITERS}.pth').exists()
        out = train(write_config(tmp_path / 'resumed.py', hooks, ITERS,
                                 workers, extra), run, procs,
                    resume=True).stdout
        assert f'resumed epoch: 0, iter: {kill // 3 * 3}' in out
    finally:
        finish(reference)
    return final_checkpoint(ref, ITERS), final_checkpoint(run, ITERS)


@pytest.mark.parametrize('workers,kill', [
    (0, 5),  # between checkpoints 3 and 6, after the evaluation at 4
    (2, 3),  # right after the checkpoint at 3; augmentation in workers
])
def test_one_process_resume_is_bit_exact(tmp_path, workers, kill):
    ref, resumed = _kill_and_resume(tmp_path, workers, kill, procs=1)
    assert same_state(ref, resumed)


def test_resume_with_deferred_reweighting_and_logit_noise(tmp_path):
    ref, resumed = _kill_and_resume(tmp_path, workers=0, kill=5, procs=1,
                                    extra=LOSSES)
    assert same_state(ref, resumed)
    assert 'decode.loss_blv' in str(ref['message_hub'])


def test_two_gloo_processes_resume_is_bit_exact(tmp_path):
    ref, resumed = _kill_and_resume(tmp_path, workers=0, kill=5, procs=2)
    assert same_state(ref, resumed)


def test_without_the_hook_resume_drifts(tmp_path):
    """mmengine alone: the resumed run's generators start from the seed
    again (dropout, flips), so the weights differ."""
    ref, resumed = _kill_and_resume(tmp_path, workers=0, kill=5, procs=1,
                                    hook=False)
    assert not same_state(ref, resumed)


def test_derived_seeds_are_pure_and_distinct():
    """The seed of (run seed, rank, tag, index) is a pure function of them,
    and neighbouring positions, ranks and run seeds give different ones."""
    s = derived_seed(0, 0, 0, 5)
    assert s == derived_seed(0, 0, 0, 5) and 0 <= s < 2**64
    seeds = {derived_seed(seed, rank, tag, i) for seed in (0, 1)
             for rank in (0, 1) for tag in (0, 1, 2) for i in range(50)}
    assert len(seeds) == 2 * 2 * 3 * 50
    # reseeding gives that seed's torch and numpy streams again
    reseed_all(s)
    a = (torch.rand(3), np.random.rand(3))
    reseed_all(s)
    b = (torch.rand(3), np.random.rand(3))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    reseed_all(derived_seed(0, 0, 0, 6))
    assert not torch.equal(torch.rand(3), a[0])


def test_bad_option_names_the_field():
    with pytest.raises(TypeError, match='ExactResumeHook: enabled'):
        ExactResumeHook(enabled='yes')
