"""mmseg_longtail.experiments.launch through tools/grid.py: the dry-run
plans (which cells, which wait for their sweep, the commands, the sbatch
script; nothing written), a pattern that matches nothing, local runs of the
tiny study (a done cell skipped, an interrupted or preempted one resumed),
and the CamVid CPU study's reproduce command on the real files."""
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import CAMVID_TRAIN_PIXELS, REPO_ROOT, run_tool
from tests.fault_runs import log_matches, wait_until
from tests.test_experiments.helpers import (CARVED_TRAIN_IMAGES,
                                            CARVED_TRAIN_PIXELS, DRW, SPEC,
                                            TAGS, TAIL, TINY_STUDY, TINY_TAIL,
                                            C, column, numbers, row,
                                            run_in_process, section,
                                            table_after)

PLANNED = r'^\s+\d+ ({}/\S+)\s+new\s+run'


def _status(run: Path) -> dict:
    return json.loads((run / 'grid_status.json').read_text())


# -------------------------------------------------------------- dry runs
def test_paper_grid_dry_run_prints_the_plan_and_writes_nothing(tmp_path):
    work = tmp_path / 'work'
    out = run_in_process(['tools/grid.py', '--datasets', 'camvid',
                          '--losses', 'c*', '--work-root', work,
                          '--results-dir', tmp_path / 'results',
                          '--dry-run']).stdout
    # CE (1 setting) + CB (3) + CBFocal (2) on 5 models at seed 0; the
    # further seeds of CE (no selection needed) also: 5 x 2
    assert '40 cells selected' in out
    planned = re.findall(PLANNED.format('camvid'), out, re.M)
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
    tail = '_unet-s5-d16_fcn-noaux_1xb4-30k_camvid-360x480_seed0'
    assert str(work / f'ce{tail}') in out
    assert str(work / f'cb-bmed-img{tail}') in out
    assert not work.exists()

    out = run_in_process(['tools/grid.py', '--models', 'deeplabv3plus',
                          '--losses', 'pat:tau2', '--slurm', '--partition',
                          'gpu', '--gpus', '4', '--cpus-per-task', '6',
                          '--max-parallel', '2', '--time', '1-00:00:00',
                          '--work-root', work, '--dry-run']).stdout
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
    out = run_in_process(['tools/grid.py', '--models', 'deeplabv3plus',
                          '--losses', 'pat:tau2', '--slurm',
                          '--signal-seconds', '0', '--work-root', work,
                          '--dry-run']).stdout
    assert '--requeue' not in out and '--signal' not in out
    assert re.search(r'^exec \S+ -u \S+grid.py --run-cell ', out, re.M)
    assert not work.exists()


def test_bad_selection_fails_clearly():
    proc = run_in_process(['tools/grid.py', '--losses', 'pta', '--dry-run'],
                          check=False)
    assert proc.returncode != 0
    assert "'pta' matches none of" in proc.stdout


def test_camvid_dry_run_plan_writes_nothing(tmp_path):
    work, results = tmp_path / 'study', tmp_path / 'results'
    common = ['--work-root', work, '--results-dir', results, '--dry-run']
    out = run_in_process(['tools/grid.py', '--study', SPEC] + common).stdout
    assert '27 cells selected' in out
    assert ('12 (data set, model, loss) groups wait for their sweep before '
            'their further seeds are planned') in out
    keys = re.findall(PLANNED.format('camvid'), out, re.M)
    assert keys == [C(lo, 0, t).key for lo in TAGS for t in TAGS[lo]] + [
        'camvid/unet/ce/seed1', 'camvid/unet/ce/seed2']
    cmds = [ln for ln in out.splitlines() if 'tools/train.py' in ln]
    assert len(cmds) == 27 and all('--resume' in c for c in cmds)
    assert str(work / f'cb-b0.9999-img{TAIL}_seed0') in out
    assert 'randomness.seed=2' in cmds[-1]
    assert 'class statistics (camvid): ' in out
    assert 'would write it' in out
    # a swept loss: its two settings at seed 0, its further seeds wait
    out = run_in_process(['tools/grid.py', '--study', SPEC, '--losses',
                          'pat'] + common).stdout
    assert '2 cells selected' in out
    keys = re.findall(PLANNED.format('camvid'), out, re.M)
    assert keys == ['camvid/unet/pat:tau1/seed0', 'camvid/unet/pat:tau2/seed0']
    assert ('1 (data set, model, loss) groups wait for their sweep before '
            'their further seeds are planned: camvid/unet/pat') in out
    assert str(work / f'pat-tau2{TAIL}_seed0') in out
    # one setting by its tag
    out = run_in_process(['tools/grid.py', '--study', SPEC, '--losses',
                          'ldam:s5*'] + common).stdout
    assert '1 cells selected' in out
    assert str(work / f'ldam-s5-drw{TAIL}_seed0') in out
    assert 'camvid/unet/ldam' in out and 'wait for their sweep' in out
    # CE needs no selection: its three seeds at once, nothing waits
    out = run_in_process(['tools/grid.py', '--study', SPEC, '--losses',
                          'ce'] + common).stdout
    assert '3 cells selected' in out
    keys = re.findall(PLANNED.format('camvid'), out, re.M)
    assert keys == [f'camvid/unet/ce/seed{s}' for s in (0, 1, 2)]
    assert 'wait for their sweep' not in out
    assert not work.exists() and not results.exists()
    # --full-res: both grid models, the 30k names
    out = run_in_process(['tools/grid.py', '--study', SPEC, '--full-res',
                          '--losses', 'ce,ldam'] + common).stdout
    assert '10 cells selected' in out
    keys = re.findall(PLANNED.format('camvid'), out, re.M)
    assert keys == [C(lo, 0, t, m).key for lo in ('ce', 'ldam')
                    for t in TAGS[lo] for m in ('unet', 'deeplabv3plus')] + [
        C('ce', s, '', m).key for s in (1, 2)
        for m in ('unet', 'deeplabv3plus')]
    assert '2 (data set, model, loss) groups wait for their sweep' in out
    assert 'ce_unet-s5-d16_fcn-noaux_1xb4-30k_camvid-360x480_seed0' in out
    assert ('ldam-s5-drw_deeplabv3plus_r50-d8_1xb4-30k_camvid-360x480_seed0'
            in out)
    assert not work.exists() and not results.exists()


# ------------------------------------------------------ local tiny runs
def _summary_row(out: str, name: str) -> dict:
    """The launcher's summary (the runs table) row of run ``name``, by
    column."""
    table = table_after(out[out.rindex('summary:'):])
    return {h: c for h, c in zip(table[0][1:], row(table, name))}


def test_local_grid_skips_done_and_resumes(tmp_path):
    root = tmp_path / 'grid'
    results = tmp_path / 'results'
    common = ['tools/grid.py', '--study', TINY_STUDY, '--models', 'unet',
              '--seeds', '0', '--work-root', root, '--results-dir', results,
              '--cfg-options', 'default_hooks.logger.interval=1']
    short = ['train_cfg.max_iters=2', 'train_cfg.val_interval=2',
             'default_hooks.checkpoint.interval=2']
    out = run_in_process(common + short + ['--losses', 'ce']).stdout
    ce = root / f'ce{TINY_TAIL}'
    assert _status(ce)['state'] == 'done'
    assert _status(ce)['cell'] == dict(dataset='synthetic_tiny',
                                       model='unet', loss='ce', variant='',
                                       seed=0)
    assert _status(ce)['study'] == 'tiny_study'
    assert (ce / 'iter_2.pth').is_file()
    record = results / 'runs' / f'{ce.name}.json'
    assert record.is_file()
    rec = json.loads(record.read_text())
    summary = _summary_row(out, ce.name)
    assert (summary['status'], summary['iters']) == ('done', '2')
    assert summary['selection mIoU'] == (
        f'{rec["selection"]["summary"]["mIoU"]:.2f}')
    assert summary['report mIoU'] == f'{rec["report"]["summary"]["mIoU"]:.2f}'
    assert re.fullmatch(r'\d+:\d\d', summary['wall'])

    # finished: skipped without starting anything
    log_size = (ce / 'grid_train.log').stat().st_size
    out = run_in_process(common + short + ['--losses', 'ce']).stdout
    assert 'nothing to run' in out
    assert (ce / 'grid_train.log').stat().st_size == log_size
    assert _summary_row(out, ce.name)['status'] == 'done'

    # finished, but its record is gone: it resumes at its last iteration,
    # trains no further, is tested on the report split and recorded again
    record.unlink()
    out = run_in_process(common + short + ['--losses', 'ce']).stdout
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
    out = run_in_process(common + longer +
                         ['--losses', 'ce,pat:tau2']).stdout
    assert re.search(r'synthetic_tiny/unet/ce/seed0\s+resume@2\s+run', out)
    assert re.search(r'synthetic_tiny/unet/pat:tau2/seed0\s+new\s+run', out)
    resumed = (ce / 'grid_train.log').read_text()[log_size:]
    assert 'resumed epoch: 0, iter: 2' in resumed
    assert re.search(r'Iter\(train\) \[3/3\]', resumed)
    assert not re.search(r'Iter\(train\) \[[12]/3\]', resumed)
    assert _status(ce)['state'] == 'done' and _status(ce)['attempts'] == 3
    pat = root / f'pat-tau2{TINY_TAIL}'
    assert _status(pat)['state'] == 'done'
    assert (pat / 'iter_3.pth').is_file()
    assert _summary_row(out, pat.name)['iters'] == '3'

    # a corrupt status: warned about, the cell resumes
    (ce / 'grid_status.json').write_text('{"cell": ')
    record.unlink()
    out = run_in_process(common + longer +
                         ['--losses', 'ce', '--dry-run']).stdout
    assert 'grid_status.json: unreadable run status' in out
    assert re.search(r'synthetic_tiny/unet/ce/seed0\s+resume@3\s+run', out)

    out = run_in_process(['tools/collect_results.py', '--study',
                          TINY_STUDY, '--results-dir', results, '--tables',
                          'table3']).stdout
    assert '1 finished runs' in out
    table = table_after(out, '**Table 3')
    assert table[0] == ['Loss', 'mIoU', 'aAcc', 'DiceErr']
    cells = row(table, 'PAT (tau=2)')
    assert all(re.fullmatch(r'\**[\d.]+\**', c) for c in cells), cells
    assert row(table, 'CE') == [''] * 3  # its record was removed
    assert row(table, 'Focal') == [''] * 3  # never run
    metrics = json.loads(
        (pat / 'longtail_metrics' / 'latest_test.json').read_text())
    assert metrics['stage'] == 'test' and metrics['groups'] == dict(
        head=[0, 1], body=[2], tail=[3, 4])
    assert cells[0].strip('*') == f'{metrics["summary"]["mIoU"]:.2f}'
    assert cells[1].strip('*') == f'{metrics["summary"]["aAcc"]:.2f}'


def test_local_grid_preempted_cell_resumes(tmp_path):
    """SIGTERM to tools/grid.py (a scheduler stopping the job) reaches the
    training: its PreemptionHook checkpoints the iteration and exits 75, the
    cell's status says `preempted`, and grid.py stops with 75. Run again,
    the cell resumes from that checkpoint and finishes."""
    root, results = tmp_path / 'grid', tmp_path / 'results'
    cmd = [sys.executable, 'tools/grid.py', '--study', TINY_STUDY,
           '--models', 'unet', '--losses', 'ce', '--seeds', '0',
           '--work-root', str(root), '--results-dir', str(results),
           '--cfg-options', 'default_hooks.logger.interval=1',
           'train_cfg.max_iters=100', 'train_cfg.val_interval=100',
           'default_hooks.checkpoint.interval=100']
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    ce = root / f'ce{TINY_TAIL}'
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_until(log_matches(ce / 'grid_train.log',
                               r'Iter\(train\) \[\s*5/100\]'), proc,
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
    assert 5 <= it < 100 and (ce / f'iter_{it}.pth').is_file()
    assert status['reason'] == (f'preempted after iteration {it}: '
                                'checkpoint written, resumes from it')
    assert 'stopping the grid (exit 75)' in out
    assert not (results / 'runs').exists()

    out = run_in_process(cmd[1:]).stdout
    assert re.search(rf'synthetic_tiny/unet/ce/seed0\s+resume@{it}\s+run',
                     out)
    resumed = (ce / 'grid_train.log').read_text()
    assert f'resumed epoch: 0, iter: {it}' in resumed
    assert _status(ce)['state'] == 'done' and _status(ce)['attempts'] == 2
    assert (results / 'runs' / f'{ce.name}.json').is_file()


# ------------------------------------------------- CamVid on real files
def _label_counts(files) -> list:
    """Pixels per class (ids 0..10) of CamVid label files."""
    import numpy as np
    from PIL import Image
    total = np.zeros(256, np.int64)
    for f in files:
        total += np.bincount(np.asarray(Image.open(f)).ravel(),
                             minlength=256)
    return total[:11].tolist()


def test_reproduce_command_smoke(tmp_path, camvid_root):
    """The CamVid study's command with a tiny schedule on the real files:
    the selection split is carved (sequence 0006R0), the statistics are
    counted on the other 266 frames, an LDAM setting (counted, DRW switched
    on after its first iteration here) trains, validates on the selection
    split, is tested on the report split and recorded, and the page is
    generated from the record."""
    root = tmp_path / 'study'
    results = tmp_path / 'results'
    tiny = ['train_cfg.max_iters=2', 'train_cfg.val_interval=2',
            'default_hooks.checkpoint.interval=2',
            'train_dataloader.batch_size=2',
            'model.decode_head.loss_decode.drw_start_iter=1',
            'val_dataloader.dataset.indices=3',
            'test_dataloader.dataset.indices=3']
    out = run_tool(['tools/grid.py', '--study', SPEC, '--data-root',
                    camvid_root, '--work-root', root, '--results-dir',
                    results, '--losses', 'ldam:s5*', '--seeds', '0',
                    '--cfg-options'] + tiny, timeout=300).stdout
    assert 'carved camvid: 266 training and 101 selection files' in out
    assert 'class statistics (camvid): writing' in out
    # the carve: whole sequence 0006R0, disjoint from training
    folder = results / 'splits' / 'camvid'
    train = (folder / 'train.txt').read_text().split()
    selection = (folder / 'selection.txt').read_text().split()
    real = sorted(p.stem for p in (camvid_root / 'img_dir' /
                                   'train').glob('*.jpg'))
    assert sorted(selection) == [s for s in real if s.startswith('0006R0_')]
    assert len(selection) == 101 and len(train) == 266
    assert not set(train) & set(selection)
    assert sorted(train + selection) == real
    # statistics of the training frames only: all of train minus 0006R0
    stats = json.loads((root / 'class_stats' / 'camvid.json').read_text())
    held_out = _label_counts(camvid_root / 'ann_dir' / 'train' / f'{s}.png'
                             for s in selection)
    assert stats['num_images'] == 266
    assert stats['pixel_counts'] == CARVED_TRAIN_PIXELS == [
        a - b for a, b in zip(CAMVID_TRAIN_PIXELS, held_out)]
    assert stats['image_counts'] == CARVED_TRAIN_IMAGES
    name = f'ldam-s5-drw{TAIL}_seed0'
    status = json.loads((root / name / 'grid_status.json').read_text())
    assert status['state'] == 'done' and status['cell']['seed'] == 0
    assert status['cell']['variant'] == 's5-drw'
    assert 'loadavg_start' not in status
    record = json.loads((results / 'runs' / f'{name}.json').read_text())
    assert record['iters'] == 2 and record['study'] == 'camvid_cpu'
    assert record['options'] == dict(DRW, s=5.0)
    assert record['train_counts'] == CARVED_TRAIN_PIXELS
    assert record['selection']['iter'] == 2
    assert record['report'] is not None
    # the selection (0006R0) and the report (val) are other images
    assert record['selection']['per_class_iou'] != \
        record['report']['per_class_iou']
    page = tmp_path / 'camvid.md'
    # the run's work root, not the study's default (runs may be going there)
    run_tool(['tools/collect_results.py', '--study', SPEC, root,
              '--results-dir', results, '--page', page])
    md = page.read_text()
    assert numbers(r'(\d+) of (\d+) runs', md) == (1, 27)
    assert ('--cfg-options ' + ' '.join(tiny)) in md
    rep = f'{record["report"]["summary"]["mIoU"]:.2f}'
    assert row(table_after(section(md, '## Results')),
               'LDAM (s=5, DRW)') == [rep]
    sel = f'{record["selection"]["summary"]["mIoU"]:.2f}'
    assert row(table_after(section(md, '## Selection')),
               'LDAM (s=5, DRW)') == [f'**{sel} (so far)**']
    # one evaluation: too few to judge convergence
    runs = table_after(section(md, '## Runs'))
    assert column(runs, 'converged')[name] == 'too few'
    assert (tmp_path / 'camvid_class_iou_unet.png').is_file()
