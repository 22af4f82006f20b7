"""A real single-node SLURM cluster on this machine: tools/slurm_train.sh
with 2 tasks on CPU, and a 2-cell grid submitted by tools/grid.py --slurm
as one job array, collected by tools/collect_results.py.

The tests need a SLURM controller that answers (``sinfo`` succeeds); they
are deselected where none does (tests/conftest.py), and install or start
nothing themselves. ``tools/slurm/setup_local_slurm.sh`` brings up a local
one (``.ci/run`` runs it before the suite).
"""
import json
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT, run_tool
from tests.fault_runs import log_matches, wait_until
from tests.test_experiments.helpers import (TINY_STUDY, TINY_TAIL, column,
                                            run_in_process, table_after)

CONFIG = 'tests/test_configs/data/tiny_gn_synthetic.py'


pytestmark = pytest.mark.slurm


@pytest.fixture(scope='module')
def slurm_partition():
    return os.environ.get('SLURM_LOCAL_PARTITION', 'local')


def test_slurm_train_two_tasks_on_cpu(slurm_partition, tmp_path):
    work = tmp_path / 'run'
    env = dict(os.environ, GPUS='2', GPUS_PER_NODE='0', CPUS_PER_TASK='1',
               LOG_DIR=str(tmp_path / 'slurm_logs'),
               PYTHON=sys.executable, PYTHONPATH=str(REPO_ROOT),
               OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    proc = subprocess.run(
        ['bash', 'tools/slurm_train.sh', slurm_partition, 'lt-train', CONFIG,
         '--work-dir', str(work), '--cfg-options',
         'train_dataloader.batch_size=2'],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-6000:]
    srun_line = next(ln for ln in proc.stdout.splitlines()
                     if ln.startswith('+ srun'))
    # CPU nodes: no GPU requested, 2 tasks of 1 CPU
    assert '--gres' not in srun_line
    assert '--ntasks=2' in srun_line and '--cpus-per-task=1' in srun_line
    records = {}
    for rank in (0, 1):
        lines = (work / f'losses_rank{rank}.jsonl').read_text().splitlines()
        records[rank] = [json.loads(x) for x in lines]
        assert [r['iter'] for r in records[rank]] == [1, 2, 3, 4]
        assert {r['world_size'] for r in records[rank]} == {2}
    for a, b in zip(records[0], records[1]):
        assert not set(a['img_path']) & set(b['img_path'])
    assert (work / 'iter_4.pth').is_file()
    assert re.search(r'mIoU: \d', proc.stdout)


def test_grid_slurm_job_array(slurm_partition, tmp_path):
    root = tmp_path / 'grid'
    results = tmp_path / 'results'
    env = dict(OMP_NUM_THREADS='1')
    select = ['--study', TINY_STUDY, '--models', 'unet', '--losses',
              'ce,pat:tau2', '--seeds', '0', '--work-root', root,
              '--results-dir', results]
    out = run_tool([
        'tools/grid.py', '--slurm', '--wait', '--partition', slurm_partition,
        '--gpus-per-node', '0', '--cpus-per-task', '1', '--job-name',
        'lt-grid'] + select + [
            '--cfg-options', 'train_cfg.max_iters=2',
            'train_cfg.val_interval=2', 'default_hooks.checkpoint.interval=2'
        ], env=env).stdout
    job = re.search(r'job array (\d+) submitted', out).group(1)
    assert 'ended (sbatch exit 0)' in out
    runs = sorted(root.glob(f'*{TINY_TAIL}'))
    assert [r.name.split('_')[0] for r in runs] == ['ce', 'pat-tau2']
    tasks = set()
    for run in runs:
        status = json.loads((run / 'grid_status.json').read_text())
        assert status['state'] == 'done' and status['returncode'] == 0
        assert status['launcher'] == 'slurm'
        tasks.add(status['slurm_job'])
        assert (run / 'iter_2.pth').is_file()
        # trained, tested on the report split, recorded
        assert (run / 'longtail_metrics' / 'latest_test.json').is_file()
        assert (results / 'runs' / f'{run.name}.json').is_file()
    # one job array, one task per cell
    assert tasks == {f'{job}_0', f'{job}_1'}
    logs = sorted(p.name for p in (root / '_grid' / 'logs').iterdir())
    assert logs == [f'{job}_0.out', f'{job}_1.out']

    # resubmitting finished cells submits nothing
    again = run_in_process(['tools/grid.py', '--slurm', '--partition',
                            slurm_partition] + select).stdout
    assert 'nothing to run' in again and 'submitting' not in again

    out = run_in_process(['tools/collect_results.py', '--study',
                          TINY_STUDY, '--results-dir', results, '--tables',
                          'runs']).stdout
    table = table_after(out, '**All runs**')
    for run in runs:
        rec = json.loads((results / 'runs' / f'{run.name}.json').read_text())
        cells = {h: column(table, h)[run.name] for h in table[0][1:]}
        assert (cells['status'], cells['iters']) == ('done', '2')
        assert cells['selection mIoU'] == (
            f'{rec["selection"]["summary"]["mIoU"]:.2f}')
        assert cells['report mIoU'] == (
            f'{rec["report"]["summary"]["mIoU"]:.2f}')
        assert re.fullmatch(r'\d+:\d\d', cells['wall'])


def _warn_and_release_requeued(job: str) -> None:
    """Send the time-limit warning to ``job``'s batch shell (what
    --signal=B:USR1@N does), wait until the job has requeued itself, and
    let it start again within seconds instead of after SLURM's requeue delay
    (about 2 minutes)."""
    subprocess.run(['scancel', '--signal=USR1', '--batch', job], check=True)

    def requeued():
        info = subprocess.run(['scontrol', 'show', 'job', job, '-o'],
                              capture_output=True, text=True).stdout
        return 'Restarts=1' in info and 'JobState=PENDING' in info

    # not tied to the submitting process: `sbatch --wait` may return
    # while the job is requeued
    wait_until(requeued, what=f'job {job} requeued', poll=0.2)
    # not at once: slurmd rejects a start in the second its previous run's
    # credential was revoked ("Job credential revoked"), which the delay
    # exists to avoid
    subprocess.run(['scontrol', 'update', f'JobId={job}', 'StartTime=now+5'],
                   check=True)


def test_slurm_train_preempted_requeued_resumed(slurm_partition, tmp_path):
    """The preemption round trip on the real controller: a 2-task job of
    tools/slurm_train.sh gets SLURM's warning signal in its batch shell
    (`scancel --signal=USR1 --batch`, what --signal=B:USR1@N sends), the
    training checkpoints the iteration it is at and exits 75, the job
    requeues itself, restarts with --resume, and ends with the weights of an
    uninterrupted 2-process run."""
    from tests.fault_runs import (final_checkpoint, same_state, train,
                                  write_config)
    iters = 12
    hooks = [dict(type='ExactResumeHook'), dict(type='PreemptionHook')]
    slow = [dict(type='ProgressHook', delay=0.3)]
    cfg = write_config(tmp_path / 'slow.py', hooks + slow, iters)
    work, logs = tmp_path / 'run', tmp_path / 'logs'
    env = dict(os.environ, GPUS='2', GPUS_PER_NODE='0', CPUS_PER_TASK='1',
               PYTHON=sys.executable, PYTHONPATH=str(REPO_ROOT),
               OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1', LOG_DIR=str(logs))
    out_path = tmp_path / 'slurm_train.out'
    with open(out_path, 'w') as out:
        proc = subprocess.Popen(
            ['bash', 'tools/slurm_train.sh', slurm_partition, 'lt-preempt',
             str(cfg), '--work-dir', str(work)],
            cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    job = None
    try:
        wait_until(log_matches(out_path, r'submitted job \d+'), proc,
                   what='the submission')
        job = re.search(r'submitted job (\d+)', out_path.read_text()).group(1)
        # the job runs: signal its batch shell after 4 iterations
        wait_until(log_matches(work / 'progress_rank0.txt',
                               r' ([4-9]|\d\d+)$'), proc, what='iteration 4')
        _warn_and_release_requeued(job)
        assert proc.wait(timeout=300) == 0, out_path.read_text()[-6000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            subprocess.run(['scancel', job or '0'])
    log = out_path.read_text()
    stopped = re.search(r'PreemptionHook: SIGUSR1 received; stopped after '
                        r'iteration (\d+) with checkpoint', log)
    assert stopped, log[-6000:]
    it = int(stopped.group(1))
    assert 4 <= it < iters
    assert re.search(rf'\[preemptible\] stopped after SIGUSR1 \(exit '
                     rf'(75|143)\): requeueing job {job}', log), log[-3000:]
    assert f'[slurm_train] restart 1 of job {job}: resuming' in log
    assert f'resumed epoch: 0, iter: {it}' in log
    assert f'job {job} ended: COMPLETED' in log
    ref = tmp_path / 'ref'
    train(write_config(tmp_path / 'ref.py', hooks, iters), ref, 2)
    assert same_state(final_checkpoint(ref, iters),
                      final_checkpoint(work, iters))


def test_grid_array_task_preempted_requeued_resumed(slurm_partition,
                                                    tmp_path):
    """A cell of a `grid.py --slurm` job array warned like a time limit
    (USR1 to the array task's batch shell): grid.py passes the signal on,
    the training checkpoints and exits 75, the cell's status says
    `preempted`, the task requeues itself, and the restarted task resumes
    the cell from that checkpoint, tests and records it."""
    root, results = tmp_path / 'grid', tmp_path / 'results'
    iters = 200  # signalled at iteration 20; the rest runs after the requeue
    proc = subprocess.Popen(
        [sys.executable, 'tools/grid.py', '--slurm', '--wait', '--partition',
         slurm_partition, '--gpus-per-node', '0', '--cpus-per-task', '1',
         '--job-name', 'lt-grid-preempt', '--study', TINY_STUDY,
         '--models', 'unet', '--losses', 'ce', '--seeds', '0',
         '--work-root', str(root), '--results-dir', str(results),
         '--cfg-options', 'default_hooks.logger.interval=1',
         f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
         f'default_hooks.checkpoint.interval={iters}'],
        cwd=REPO_ROOT, env=dict(os.environ, OMP_NUM_THREADS='1',
                                PYTHONUNBUFFERED='1'),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    cell = root / f'ce{TINY_TAIL}'
    task = None
    try:
        wait_until(log_matches(cell / 'grid_train.log',
                               rf'Iter\(train\) \[\s*20/{iters}\]'), proc,
                   what='iteration 20')
        task = json.loads((cell / 'grid_status.json').read_text())[
            'slurm_job']
        _warn_and_release_requeued(task)
        wait_until((results / 'runs' / f'{cell.name}.json').is_file,
                   what="the requeued task's record")
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            subprocess.run(['scancel', task or '0'])
    assert 'ended (sbatch exit 0)' in out, out[-3000:]
    status = json.loads((cell / 'grid_status.json').read_text())
    assert status['state'] == 'done' and status['attempts'] == 2
    train_log = (cell / 'grid_train.log').read_text()
    stopped = re.search(r'PreemptionHook: SIGUSR1 received; stopped after '
                        r'iteration (\d+) with checkpoint', train_log)
    assert stopped, train_log[-3000:]
    it = int(stopped.group(1))
    assert 20 <= it < iters
    assert f'resumed epoch: 0, iter: {it}' in train_log
    task_log = (root / '_grid' / 'logs' /
                f'{task}.out').read_text()
    # one log for both attempts (--open-mode=append)
    assert 'requeueing job' in task_log
    assert task_log.count('synthetic_tiny/unet/ce/seed0: training') == 2
    assert (cell / f'iter_{iters}.pth').is_file()
