"""tools/grid.py: selection, the dry-run plan, and a local run of grid cells
on tiny synthetic data (skips finished cells, resumes unfinished ones)."""
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT, run_tool
from tests.fault_runs import log_matches, wait_until

TINY_DATA = 'tests/test_configs/data/synthetic_tiny.py'


def _status(run: Path) -> dict:
    return json.loads((run / 'grid_status.json').read_text())


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path):
    work = tmp_path / 'work'
    out = run_tool(['tools/grid.py', '--datasets', 'camvid', '--losses',
                    'c*', '--work-root', work, '--results-dir',
                    tmp_path / 'results', '--dry-run']).stdout
    # CE (1 setting) + CB (3) + CBFocal (2) on 5 models at seed 0; the
    # further seeds of CE (no selection needed) also: 5 x 2
    assert '40 cells selected' in out
    planned = re.findall(r'^\s+\d+ (camvid/\S+)\s+new\s+run', out, re.M)
    assert len(planned) == 40
    assert {p.split('/')[2].split(':')[0] for p in planned} == {
        'ce', 'cb', 'cbfocal'}
    assert {p.split('/')[1] for p in planned} == {
        'unet', 'attunet', 'unetpp', 'deeplabv3', 'deeplabv3plus'}
    assert 'camvid/unet/cb:bmed-img/seed0' in planned
    # CB's further seeds wait for its sweep
    assert 'camvid/unet/cb:bmed/seed1' not in planned
    # 5 models x (CB, CBFocal) on CamVid: the count follows the selection
    assert '10 (data set, model, loss) groups wait for their sweep' in out
    # one train.py command per cell, with --resume, its work dir and seed
    cmds = [ln for ln in out.splitlines() if 'tools/train.py' in ln]
    assert len(cmds) == 40 and all('--resume' in c for c in cmds)
    assert all('randomness.seed=' in c for c in cmds)
    assert str(work / 'ce_unet-s5-d16_fcn-noaux_1xb4-30k_camvid-360x480_seed0') \
        in out
    assert str(work / 'cb-bmed-img_unet-s5-d16_fcn-noaux_1xb4-30k_camvid-360x480'
               '_seed0') in out
    assert not work.exists()

    out = run_tool(['tools/grid.py', '--models', 'deeplabv3plus', '--losses',
                    'pat:tau2', '--slurm', '--partition', 'gpu', '--gpus',
                    '4', '--cpus-per-task', '6', '--max-parallel', '2',
                    '--time', '1-00:00:00', '--work-root', work,
                    '--dry-run']).stdout
    assert '4 cells selected' in out
    for line in ('#SBATCH --array=0-3%2', '#SBATCH --ntasks=4',
                 '#SBATCH --ntasks-per-node=4', '#SBATCH --gres=gpu:4',
                 '#SBATCH --cpus-per-task=6', '#SBATCH --partition=gpu',
                 '#SBATCH --time=1-00:00:00'):
        assert line in out
    # preemptible: warned 180 s before the time limit, requeued on exit 75
    assert '#SBATCH --requeue' in out and '#SBATCH --signal=B:USR1@180' in out
    assert re.search(r'^run_preemptible \S+ -u \S+grid.py --run-cell ', out,
                     re.M)
    out = run_tool(['tools/grid.py', '--models', 'deeplabv3plus', '--losses',
                    'pat:tau2', '--slurm', '--signal-seconds', '0',
                    '--work-root', work, '--dry-run']).stdout
    assert '--requeue' not in out and '--signal' not in out
    assert re.search(r'^exec \S+ -u \S+grid.py --run-cell ', out, re.M)
    assert not work.exists()


def test_bad_selection_fails_clearly(tmp_path):
    proc = run_tool(['tools/grid.py', '--losses', 'pta', '--dry-run'],
                    check=False)
    assert proc.returncode != 0
    assert "'pta' matches none of" in proc.stdout


def test_local_grid_skips_done_and_resumes(tmp_path):
    root = tmp_path / 'grid'
    results = tmp_path / 'results'
    common = ['tools/grid.py', '--data-config', TINY_DATA, '--models', 'unet',
              '--seeds', '0', '--work-root', root, '--results-dir', results,
              '--cfg-options', 'default_hooks.logger.interval=1']
    short = ['train_cfg.max_iters=2', 'train_cfg.val_interval=2',
             'default_hooks.checkpoint.interval=2']
    out = run_tool(common + short + ['--losses', 'ce']).stdout
    ce = root / 'ce_unet-s5-d16_fcn-noaux_1xb2-30k_synthetic-tiny-32x32_seed0'
    assert _status(ce)['state'] == 'done'
    assert _status(ce)['cell'] == dict(dataset='synthetic_tiny',
                                       model='unet', loss='ce', variant='',
                                       seed=0)
    assert (ce / 'iter_2.pth').is_file()
    assert re.search(r'synthetic_tiny/unet/ce/seed0\s+done\s+2\s+\S+\s+\d',
                     out)
    record = results / 'runs' / f'{ce.name}.json'
    assert record.is_file()

    # finished: skipped without starting anything
    log_size = (ce / 'grid_train.log').stat().st_size
    out = run_tool(common + short + ['--losses', 'ce']).stdout
    assert 'nothing to run' in out
    assert (ce / 'grid_train.log').stat().st_size == log_size

    # finished, but its record is gone: it resumes at its last iteration,
    # trains no further, is tested on the report split and recorded again
    record.unlink()
    out = run_tool(common + short + ['--losses', 'ce']).stdout
    assert re.search(r'synthetic_tiny/unet/ce/seed0\s+resume@2\s+run', out)
    again = (ce / 'grid_train.log').read_text()[log_size:]
    assert 'tools/test.py' in again
    assert not re.search(r'Iter\(train\) \[', again)
    assert record.is_file()
    log_size = (ce / 'grid_train.log').stat().st_size

    # an interrupted run (a killed job leaves its status at 'running' and no
    # record) resumes from its last checkpoint; a new cell starts afresh
    record.unlink()
    status = _status(ce)
    status['state'] = 'running'
    (ce / 'grid_status.json').write_text(json.dumps(status))
    longer = ['train_cfg.max_iters=3', 'train_cfg.val_interval=3',
              'default_hooks.checkpoint.interval=3']
    out = run_tool(common + longer + ['--losses', 'ce,pat:tau2']).stdout
    assert re.search(r'synthetic_tiny/unet/ce/seed0\s+resume@2\s+run', out)
    assert re.search(r'synthetic_tiny/unet/pat:tau2/seed0\s+new\s+run', out)
    resumed = (ce / 'grid_train.log').read_text()[log_size:]
    assert 'resumed epoch: 0, iter: 2' in resumed
    assert re.search(r'Iter\(train\) \[3/3\]', resumed)
    assert not re.search(r'Iter\(train\) \[[12]/3\]', resumed)
    assert _status(ce)['state'] == 'done' and _status(ce)['attempts'] == 3
    pat = root / 'pat-tau2_unet-s5-d16_fcn-noaux_1xb2-30k_synthetic-tiny-32x32_seed0'
    assert _status(pat)['state'] == 'done'
    assert (pat / 'iter_3.pth').is_file()

    # a corrupt status: warned about, the cell resumes
    (ce / 'grid_status.json').write_text('{"cell": ')
    record.unlink()
    out = run_tool(common + longer + ['--losses', 'ce', '--dry-run']).stdout
    assert 'grid_status.json: unreadable run status' in out
    assert re.search(r'synthetic_tiny/unet/ce/seed0\s+resume@3\s+run', out)

    out = run_tool(['tools/collect_results.py', '--data-config', TINY_DATA,
                    '--results-dir', results, '--tables', 'table3']).stdout
    assert '1 finished runs' in out
    rows = {m.group(1): m.group(2) for m in re.finditer(
        r'^\| (CE|PAT \(tau=2\)|PAT|Focal) \|(.*)\|$', out, re.M)}
    assert re.fullmatch(r' [\d.*]+ \| [\d.*]+ \| [\d.*]+ ',
                        rows['PAT (tau=2)'])
    assert rows['CE'].replace(' ', '') == '||'  # its record was removed
    assert rows['Focal'].replace(' ', '') == '||'
    metrics = json.loads(
        (pat / 'longtail_metrics' / 'latest_test.json').read_text())
    assert metrics['stage'] == 'test' and metrics['groups'] == dict(
        head=[0, 1], body=[2], tail=[3, 4])
    assert f'{metrics["summary"]["mIoU"]:.2f}' in rows['PAT (tau=2)']
    assert REPO_ROOT.joinpath('configs/grid').is_dir()


def test_local_grid_preempted_cell_resumes(tmp_path):
    """SIGTERM to tools/grid.py (a scheduler stopping the job) reaches the
    training: its PreemptionHook checkpoints the iteration and exits 75, the
    cell's status says `preempted`, and grid.py stops with 75. Run again,
    the cell resumes from that checkpoint and finishes."""
    root, results = tmp_path / 'grid', tmp_path / 'results'
    cmd = [sys.executable, 'tools/grid.py', '--data-config', TINY_DATA,
           '--models', 'unet', '--losses', 'ce', '--seeds', '0',
           '--work-root', str(root), '--results-dir', str(results),
           '--cfg-options', 'default_hooks.logger.interval=1',
           'train_cfg.max_iters=400', 'train_cfg.val_interval=400',
           'default_hooks.checkpoint.interval=400']
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    ce = root / 'ce_unet-s5-d16_fcn-noaux_1xb2-30k_synthetic-tiny-32x32_seed0'
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_until(log_matches(ce / 'grid_train.log',
                               r'Iter\(train\) \[\s*5/400\]'), proc,
                   what='iteration 5')
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 75, out[-3000:]
    status = _status(ce)
    assert status['state'] == 'preempted', status
    it = status['last_iter']
    assert 5 <= it < 400 and (ce / f'iter_{it}.pth').is_file()
    assert status['reason'] == (f'preempted after iteration {it}: '
                                'checkpoint written, resumes from it')
    assert 'stopping the grid (exit 75)' in out
    assert not (results / 'runs').exists()

    out = run_tool(cmd[1:]).stdout
    assert re.search(rf'synthetic_tiny/unet/ce/seed0\s+resume@{it}\s+run',
                     out)
    resumed = (ce / 'grid_train.log').read_text()
    assert f'resumed epoch: 0, iter: {it}' in resumed
    assert _status(ce)['state'] == 'done' and _status(ce)['attempts'] == 2
    assert (results / 'runs' / f'{ce.name}.json').is_file()
