"""Run cells of the comparison grid: locally, with torchrun, or on SLURM.

    # plan only: which cells, which are done / to resume / new
    python tools/grid.py --datasets camvid --models 'unet*' --dry-run
    # one after another in this shell (tools/train.py)
    python tools/grid.py --datasets camvid --losses ce,pat
    # one after another, each on 4 GPUs (tools/dist_train.sh)
    python tools/grid.py --datasets camvid --dist --gpus 4
    # one SLURM job array, one array task per cell
    python tools/grid.py --datasets 'cityscapes' --slurm --partition gpu \\
        --gpus 4 --gpus-per-node 4 --cpus-per-task 5 --max-parallel 8

Cells are selected with glob patterns on the keys of tools/misc/grid_spec.py
(data sets: pet cityscapes nyuv2 camvid; models: unet attunet unetpp
deeplabv3 deeplabv3plus; losses: ce focal cb cbfocal bms ldam blv pat);
each axis accepts several patterns, comma- or space-separated.

Idempotent: every run writes ``<work_dir>/grid_status.json``; a cell whose
status is ``done`` is skipped, any other cell is (re)started with
``--resume``, i.e. it continues from its last checkpoint. ``--cfg-options``
go to tools/train.py unchanged (e.g. ``train_cfg.max_iters=1000``).
``--data-config`` runs the selected models x losses on another data set base
(e.g. configs/_base_/datasets/synthetic.py for smoke tests): the cell
configs are then rendered into ``<work-root>/_grid/configs/`` by the same
code that writes configs/grid/.

``--study SPEC`` runs a study instead (e.g. configs/camvid_study/
study_cpu.py: its own data set base, light model bases, schedule, losses
and seeds; docs/study.md): seeds are an axis (``--seeds``; work dirs end in
``_seed<N>``, configs set ``randomness.seed``), the cells run most
informative first, the data set's class statistics are written first when
missing, and ``--full-res`` switches to the spec's full-resolution variant.
"""
import argparse
import datetime
import json
import os
import os.path as osp
import re
import shlex
import socket
import subprocess
import sys
import time
from typing import List, Optional, Sequence

TOOLS = osp.dirname(osp.abspath(__file__))
sys.path.insert(0, osp.join(TOOLS, 'misc'))
sys.path.insert(0, TOOLS)
import collect_results  # noqa: E402
import grid_spec  # noqa: E402

REPO_ROOT = grid_spec.REPO_ROOT
STATUS_FILE = collect_results.STATUS_FILE
GRID_DIR_NAME = '_grid'


# ------------------------------------------------------------------ plan
def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description='Run cells of the loss x model x data set grid',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__)
    sel = p.add_argument_group('selection')
    sel.add_argument('--datasets', nargs='+', metavar='GLOB',
                     help=f'data set keys ({" ".join(grid_spec.DATASETS)})')
    sel.add_argument('--models', nargs='+', metavar='GLOB',
                     help=f'model keys ({" ".join(grid_spec.MODELS)})')
    sel.add_argument('--losses', nargs='+', metavar='GLOB',
                     help=f'loss keys ({" ".join(grid_spec.LOSSES)})')
    sel.add_argument(
        '--data-config', metavar='BASE',
        help='run the selected models x losses on this data set base config '
        'instead (it must define num_classes, crop_size, class_stats_file)')
    study = p.add_argument_group('studies (--study)')
    study.add_argument(
        '--study', metavar='SPEC',
        help='run a study spec, e.g. configs/camvid_study/study_cpu.py '
        '(--models / --losses select among its keys)')
    study.add_argument('--full-res', action='store_true',
                       help="the spec's full-resolution variant (its "
                       '`full_res` overrides: GPU-sized data, models and '
                       'schedule)')
    study.add_argument('--seeds', nargs='+', metavar='N',
                       help="only these of the study's seeds")
    study.add_argument('--data-root', help="the data set's root (default: "
                       "the spec's data_root)")
    run = p.add_argument_group('running')
    run.add_argument('--work-root', default=None,
                     help='work dirs are <work-root>/<config name> (default: '
                     "work_dirs/grid, or the study's work_root)")
    mode = run.add_mutually_exclusive_group()
    mode.add_argument('--dist', action='store_true',
                      help='run each cell with tools/dist_train.sh on '
                      '--gpus processes')
    mode.add_argument('--slurm', action='store_true',
                      help='submit one SLURM job array (sbatch --array)')
    run.add_argument('--gpus', type=int, default=1,
                     help='processes per cell (--dist: NGPUS; --slurm: '
                     'tasks); default 1')
    run.add_argument('--force', action='store_true',
                     help='also run cells marked done (they resume from '
                     'their last checkpoint, e.g. after raising max_iters)')
    run.add_argument('--dry-run', action='store_true',
                     help='print the plan (and the sbatch script) only')
    run.add_argument('--verbose', action='store_true',
                     help='stream the training output (local / --dist)')
    run.add_argument('--python', default=sys.executable,
                     help='interpreter for tools/train.py')
    run.add_argument(
        '--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
        help='passed to tools/train.py --cfg-options unchanged')
    slurm = p.add_argument_group('SLURM (--slurm)')
    slurm.add_argument('--partition', help='sbatch --partition')
    slurm.add_argument('--job-name', default='mmseglt-grid')
    slurm.add_argument('--gpus-per-node', type=int, default=None,
                       help='GPUs per node (default: --gpus); 0 on CPU '
                       'nodes: no --gres is requested')
    slurm.add_argument('--cpus-per-task', type=int, default=5)
    slurm.add_argument('--mem', help='sbatch --mem, e.g. 32G')
    slurm.add_argument('--time', help='sbatch --time, e.g. 1-00:00:00')
    slurm.add_argument('--max-parallel', type=int, default=None,
                       help='array tasks running at once (--array=...%%N)')
    slurm.add_argument('--sbatch-args', default='',
                       help='extra sbatch arguments, one string')
    slurm.add_argument('--wait', action='store_true',
                       help='wait for the job array to end (sbatch --wait), '
                       'then print the summary')
    p.add_argument('--run-cell', nargs=2, metavar=('PLAN', 'INDEX'),
                   help=argparse.SUPPRESS)  # one array task (internal)
    args = p.parse_args(argv)
    for axis in ('datasets', 'models', 'losses'):
        setattr(args, axis, grid_spec.split_patterns(getattr(args, axis)))
    if args.data_config and args.datasets:
        p.error('--data-config replaces the data set axis; drop --datasets')
    if args.study and (args.datasets or args.data_config):
        p.error('--study sets the data set; drop --datasets / --data-config')
    if not args.study and (args.full_res or args.seeds or args.data_root):
        p.error('--full-res, --seeds and --data-root need --study')
    try:
        args.seeds = [int(x) for x in grid_spec.split_patterns(args.seeds)
                      ] or None
    except ValueError:
        p.error('--seeds takes integers')
    if args.work_root is None and not args.study:
        args.work_root = 'work_dirs/grid'
    if args.gpus < 1:
        p.error('--gpus must be >= 1')
    for opt in args.cfg_options:
        if '=' not in opt:
            p.error(f'--cfg-options: {opt!r} is not KEY=VALUE')
    return args


def _render_override(args, cells) -> List[dict]:
    """Cells on --data-config: configs rendered into <work-root>/_grid."""
    data_config = osp.abspath(args.data_config)
    if not osp.isfile(data_config):
        raise SystemExit(f'--data-config: no such file {args.data_config}')
    batch, crop = grid_spec.dataset_facts(data_config)
    ds_key = osp.splitext(osp.basename(data_config))[0]
    ds_name = ds_key.replace('_', '-')
    cfg_dir = osp.join(osp.abspath(args.work_root), GRID_DIR_NAME, 'configs')
    entries, seen = [], set()
    for cell in cells:
        if (cell.model, cell.loss) in seen:
            continue
        seen.add((cell.model, cell.loss))
        name = grid_spec.config_name(cell, batch, crop, dataset_name=ds_name)
        text = grid_spec.render_config(
            cell, data_config, grid_spec.BASE_PREFIX,
            note=f'Rendered by tools/grid.py --data-config {args.data_config}')
        path = osp.join(cfg_dir, name + '.py')
        if not args.dry_run:
            os.makedirs(cfg_dir, exist_ok=True)
            with open(path, 'w') as f:
                f.write(text)
        entries.append(dict(cell=dict(dataset=ds_key, model=cell.model,
                                      loss=cell.loss), config=path, name=name))
    return entries


def load_study(args) -> grid_spec.Study:
    try:
        return grid_spec.load_study(args.study, args.full_res,
                                    data_root=args.data_root,
                                    work_root=args.work_root)
    except (OSError, KeyError, ValueError) as e:
        raise SystemExit(f'--study: {e}')


def study_data_base(study: grid_spec.Study) -> str:
    """Text of the study's data set base: the spec's base with the data
    root and the statistics file written in. The leaves read
    ``class_stats_file`` through ``_base_``, so the losses' counts and the
    evaluator's groups both follow it."""
    root = study.data_root
    lines = [
        f'# Data set base of the study {study.name!r}, written by '
        'tools/grid.py --study:',
        '# the spec\'s base with its data root and class statistics.',
        f'_base_ = [{study.data_base!r}]',
        f'data_root = {root!r}',
        f'class_stats_file = {study.class_stats_file!r}',
        'train_dataloader = dict(dataset=dict(data_root=data_root))',
        'val_dataloader = dict(dataset=dict(data_root=data_root))',
    ]
    if not osp.isdir(osp.join(root, 'img_dir', 'test')):
        # copies without a test split (the shared CamVid): test on val
        lines.append(
            "test_dataloader = dict(dataset=dict(data_root=data_root, "
            "data_prefix=dict(img_path='img_dir/val', "
            "seg_map_path='ann_dir/val')))")
    else:
        lines.append('test_dataloader = dict(dataset=dict('
                     'data_root=data_root))')
    lines += ['val_evaluator = dict(class_stats_file=class_stats_file)',
              'test_evaluator = dict(class_stats_file=class_stats_file)']
    return '\n'.join(lines) + '\n'


def study_data_base_path(study: grid_spec.Study) -> str:
    """Where :func:`study_data_base`'s text is written."""
    return osp.join(study.work_root, GRID_DIR_NAME, 'configs',
                    'data_base.py')


def _repo_env() -> dict:
    """The environment with the repository on PYTHONPATH (subprocesses
    import mmseg_longtail from this checkout)."""
    env = dict(os.environ)
    env['PYTHONPATH'] = REPO_ROOT + (os.pathsep + env['PYTHONPATH']
                                     if env.get('PYTHONPATH') else '')
    return env


def _write_if_changed(path: str, text: str) -> None:
    """Write atomically, and only when the content changes (array tasks
    of a running job may be reading it)."""
    if osp.isfile(path):
        with open(path) as f:
            if f.read() == text:
                return
    os.makedirs(osp.dirname(path), exist_ok=True)
    tmp = f'{path}.{os.getpid()}.tmp'
    with open(tmp, 'w') as f:
        f.write(text)
    os.replace(tmp, path)


def _study_plan(args, study: grid_spec.Study) -> List[dict]:
    """A study's cells (model x loss x seed) with their rendered configs."""
    try:
        cells = grid_spec.study_cells(study, args.models or None,
                                      args.losses or None, args.seeds)
    except ValueError as e:
        raise SystemExit(str(e))
    data_base = study_data_base_path(study)
    cfg_dir = osp.dirname(data_base)
    if not args.dry_run:
        _write_if_changed(data_base, study_data_base(study))
    spec = osp.relpath(study.path, REPO_ROOT)
    entries = []
    for c in cells:
        name = grid_spec.study_config_name(study, c)
        text = grid_spec.render_config(
            grid_spec.Cell(study.dataset, c.model, c.loss), data_base,
            grid_spec.BASE_PREFIX, model=study.models[c.model],
            schedule_base=study.schedule_base,
            dataset_title=study.dataset_title,
            note=f'Rendered by tools/grid.py --study {spec}'
            + (' --full-res' if study.variant == 'full_res' else '')
            + f', seed {c.seed}.',
            extra=f'randomness = dict(seed={c.seed})\n',
            loss=study.loss_table[c.loss])
        path = osp.join(cfg_dir, name + '.py')
        if not args.dry_run:
            _write_if_changed(path, text)
        entries.append(dict(
            cell=dict(dataset=study.dataset, model=c.model, loss=c.loss,
                      seed=c.seed, study=study.name),
            config=path, name=name))
    return entries


def ensure_class_stats(study: grid_spec.Study, python: str,
                       dry_run: bool) -> None:
    """Write the study's class statistics from the training labels when
    the file is missing (tools/analysis_tools/class_stats.py)."""
    path = study.class_stats_file
    if osp.isfile(path):
        print(f'class statistics: {path}')
        return
    cmd = [python, osp.join(TOOLS, 'analysis_tools', 'class_stats.py'),
           study_data_base_path(study), '--out', path]
    if dry_run:
        print(f'class statistics: {path} missing; would write it with: '
              f'{shlex.join(cmd)}')
        return
    if not osp.isdir(study.data_root):
        raise SystemExit(f'data root {study.data_root} not found: pass '
                         '--data-root (or set data_root in the spec)')
    print(f'class statistics: writing {path}', flush=True)
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=_repo_env(), text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if proc.returncode != 0 or not osp.isfile(path):
        raise SystemExit(f'class statistics failed ({shlex.join(cmd)}):\n'
                         f'{proc.stdout[-3000:]}')


def make_plan(args,
              study: Optional[grid_spec.Study] = None) -> List[dict]:
    """Selected cells with config, work dir and state (``study``: the
    loaded ``--study`` spec, read here when not given)."""
    if args.study:
        study = study or load_study(args)
        args.work_root = study.work_root
        entries = _study_plan(args, study)
        for e in entries:
            e['work_dir'] = osp.join(study.work_root, e['name'])
            e['key'] = '{dataset}/{model}/{loss}/seed{seed}'.format(
                **e['cell'])
            e['state'] = cell_state(e['work_dir'])
        return entries
    try:
        cells = grid_spec.select_cells(
            args.datasets or None, args.models or None, args.losses or None)
    except ValueError as e:
        raise SystemExit(str(e))
    if args.data_config:
        entries = _render_override(args, cells)
    else:
        entries = []
        for cell in cells:
            path = grid_spec.config_path(cell)
            entries.append(dict(cell=cell._asdict(), config=path,
                                name=osp.splitext(osp.basename(path))[0]))
    work_root = osp.abspath(args.work_root)
    for e in entries:
        e['work_dir'] = osp.join(work_root, e['name'])
        e['key'] = '{dataset}/{model}/{loss}'.format(**e['cell'])
        e['state'] = cell_state(e['work_dir'])
        if not args.data_config and not osp.isfile(e['config']):
            raise SystemExit(f'{e["key"]}: config {e["config"]} is missing; '
                             'run tools/misc/generate_grid_configs.py')
    return entries


def read_status(work_dir: str) -> Optional[dict]:
    return collect_results._read_json(osp.join(work_dir, STATUS_FILE))


def write_status(run_dir: str, **fields) -> dict:
    """Update ``<run_dir>/grid_status.json`` atomically."""
    status = read_status(run_dir) or {}
    status.update(fields)
    os.makedirs(run_dir, exist_ok=True)
    tmp = osp.join(run_dir, STATUS_FILE + '.tmp')
    with open(tmp, 'w') as f:
        json.dump(status, f, indent=2)
    os.replace(tmp, osp.join(run_dir, STATUS_FILE))
    return status


def _slurm_job_active(job_id: str) -> bool:
    try:
        out = subprocess.run(['squeue', '-h', '-j', job_id, '-o', '%T'],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and bool(out.stdout.strip())


def cell_state(work_dir: str) -> str:
    """done | running (a live SLURM task) | resume@N | failed | new."""
    status = read_status(work_dir) or {}
    if status.get('status') == 'done':
        return 'done'
    if (status.get('status') == 'running' and status.get('slurm_job')
            and _slurm_job_active(status['slurm_job'])):
        return 'running'
    it = collect_results.last_checkpoint_iter(work_dir)
    if it is not None:
        return f'resume@{it}'
    return 'failed' if status.get('status') == 'failed' else 'new'


def to_run(entry: dict, force: bool) -> bool:
    if entry['state'] == 'running':
        return False
    return force or entry['state'] != 'done'


# ------------------------------------------------------------------- run
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def train_command(entry: dict, launcher: str, gpus: int, python: str,
                  cfg_options: Sequence[str]) -> List[str]:
    """The command that trains one cell (launcher: local | dist | slurm)."""
    tail = [entry['config'], '--work-dir', entry['work_dir'], '--resume']
    if cfg_options:
        tail += ['--cfg-options'] + list(cfg_options)
    if launcher == 'local':
        return [python, osp.join(TOOLS, 'train.py')] + tail
    if launcher == 'dist':
        return ['bash', osp.join(TOOLS, 'dist_train.sh'), entry['config'],
                str(gpus)] + tail[1:]
    if launcher == 'slurm':
        # a step over all tasks of the array task's allocation; the port
        # comes from the job id so array tasks sharing a node do not clash.
        # One task needs no process group (and then SyncBN falls back to BN,
        # which matters on CPU nodes).
        prelude = ('export MASTER_PORT=${MASTER_PORT:-'
                   '$((20000 + SLURM_JOB_ID % 40000))}; exec "$@"')
        dist = ['--launcher', 'slurm'] if gpus > 1 else []
        return ['srun', '--kill-on-bad-exit=1', 'bash', '-c', prelude,
                'srun-task', python, '-u', osp.join(TOOLS, 'train.py')
                ] + tail + dist
    raise ValueError(launcher)


def run_cell(entry: dict, launcher: str, gpus: int, python: str,
             cfg_options: Sequence[str], verbose: bool = False,
             prefix: str = '') -> dict:
    """Train one cell, recording its status; returns the final status."""
    work_dir = entry['work_dir']
    cmd = train_command(entry, launcher, gpus, python, cfg_options)
    env = _repo_env()
    if launcher == 'dist':
        env.setdefault('PORT', str(_free_port()))
    started = time.time()
    previous = read_status(work_dir) or {}
    write_status(
        work_dir, cell=entry['cell'], config=entry['config'],
        work_dir=work_dir, status='running', launcher=launcher, gpus=gpus,
        cfg_options=list(cfg_options), command=shlex.join(cmd),
        host=socket.gethostname(), slurm_job=_slurm_job_id(),
        started=datetime.datetime.now().isoformat(timespec='seconds'),
        attempts=previous.get('attempts', 0) + 1, loadavg_start=_loadavg())
    log_path = osp.join(work_dir, 'grid_train.log')
    last_progress = 0.0
    with open(log_path, 'a') as log:
        log.write(f'\n# {datetime.datetime.now():%Y-%m-%d %H:%M:%S} '
                  f'{shlex.join(cmd)}\n')
        log.flush()
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True,
                                errors='replace')
        for line in proc.stdout:
            log.write(line)
            if verbose:
                sys.stdout.write(line)
            elif 'Iter(' in line and time.time() - last_progress > 30:
                # a heartbeat every 30 s: the latest progress line
                m = re.search(r'Iter\((train|val)\)\s*\[\s*\d+/\d+\]', line)
                if m:
                    print(f'{prefix}    {m.group(0)}', flush=True)
                    last_progress = time.time()
        returncode = proc.wait()
    wall = time.time() - started
    return write_status(
        work_dir, status='done' if returncode == 0 else 'failed',
        returncode=returncode, wall_s=previous.get('wall_s', 0.0) + wall,
        finished=datetime.datetime.now().isoformat(timespec='seconds'),
        last_iter=collect_results.last_checkpoint_iter(work_dir),
        loadavg_end=_loadavg())


def _loadavg() -> Optional[List[float]]:
    """1/5/15-minute load averages: how busy the machine was (timings)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _slurm_job_id() -> Optional[str]:
    """``<array job>_<task>`` inside an array task, the job id in a job."""
    if 'SLURM_ARRAY_JOB_ID' in os.environ:
        return (f'{os.environ["SLURM_ARRAY_JOB_ID"]}_'
                f'{os.environ["SLURM_ARRAY_TASK_ID"]}')
    return os.environ.get('SLURM_JOB_ID')


# ----------------------------------------------------------------- SLURM
def sbatch_script(args, plan_path: str, n: int) -> str:
    gpn = args.gpus if args.gpus_per_node is None else args.gpus_per_node
    tasks_per_node = min(gpn, args.gpus) if gpn > 0 else args.gpus
    array = f'0-{n - 1}' + (f'%{args.max_parallel}'
                            if args.max_parallel else '')
    log_dir = osp.join(osp.dirname(plan_path), 'logs')
    lines = [
        '#!/usr/bin/env bash',
        f'#SBATCH --job-name={args.job_name}',
        f'#SBATCH --array={array}',
        f'#SBATCH --ntasks={args.gpus}',
        f'#SBATCH --ntasks-per-node={tasks_per_node}',
        f'#SBATCH --cpus-per-task={args.cpus_per_task}',
        f'#SBATCH --output={log_dir}/%A_%a.out',
    ]
    if gpn > 0:
        lines.append(f'#SBATCH --gres=gpu:{gpn}')
    if args.partition:
        lines.append(f'#SBATCH --partition={args.partition}')
    if args.mem:
        lines.append(f'#SBATCH --mem={args.mem}')
    if args.time:
        lines.append(f'#SBATCH --time={args.time}')
    lines += [
        '# one array task = one grid cell; written by tools/grid.py',
        f'cd {shlex.quote(REPO_ROOT)}',
        f'exec {shlex.quote(args.python)} -u '
        f'{shlex.quote(osp.join(TOOLS, "grid.py"))} --run-cell '
        f'{shlex.quote(plan_path)} "$SLURM_ARRAY_TASK_ID"',
    ]
    return '\n'.join(lines) + '\n'


def submit_slurm(args, todo: List[dict]) -> int:
    stamp = datetime.datetime.now().strftime('%Y%m%d_%H%M%S')
    grid_dir = osp.join(osp.abspath(args.work_root), GRID_DIR_NAME)
    plan_path = osp.join(grid_dir, f'plan_{stamp}.json')
    script_path = osp.join(grid_dir, f'submit_{stamp}.sh')
    script = sbatch_script(args, plan_path, len(todo))
    extra = shlex.split(args.sbatch_args)
    cmd = ['sbatch', '--parsable'] + (['--wait'] if args.wait else []) + \
        extra + [script_path]
    if args.dry_run:
        print(f'\nsbatch script ({script_path}):\n{script}')
        print('would run: ' + shlex.join(cmd))
        return 0
    os.makedirs(osp.join(grid_dir, 'logs'), exist_ok=True)
    with open(plan_path, 'w') as f:
        json.dump(dict(cells=todo, launcher='slurm', gpus=args.gpus,
                       python=args.python, cfg_options=args.cfg_options),
                  f, indent=2)
    with open(script_path, 'w') as f:
        f.write(script)
    print(f'submitting {len(todo)} cells as one job array: '
          f'{shlex.join(cmd)}', flush=True)
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    except FileNotFoundError:
        raise SystemExit('sbatch not found: is this a SLURM login node? '
                         '(tools/slurm/setup_local_slurm.sh starts a local '
                         'one-node cluster)')
    job_id = proc.stdout.readline().strip().split(';')[0]
    if job_id:
        print(f'job array {job_id} submitted; logs in {grid_dir}/logs; '
              f'follow with `squeue -j {job_id}`', flush=True)
    rc = proc.wait()
    if not args.wait:
        if rc == 0:
            print('when it ends: python tools/collect_results.py '
                  f'{args.work_root}')
        return rc
    print(f'job array {job_id} ended (sbatch exit {rc})')
    return rc


def run_array_task(plan_path: str, index: int) -> int:
    """Body of one SLURM array task (tools/grid.py --run-cell)."""
    with open(plan_path) as f:
        plan = json.load(f)
    entry = plan['cells'][index]
    if cell_state(entry['work_dir']) == 'done':
        print(f'{entry["key"]}: already done, nothing to run')
        return 0
    print(f'{entry["key"]}: training {entry["config"]} in '
          f'{entry["work_dir"]}', flush=True)
    status = run_cell(entry, 'slurm', plan['gpus'], plan['python'],
                      plan['cfg_options'], verbose=True)
    return int(status['returncode'])


# --------------------------------------------------------------- output
def print_plan(plan: List[dict], force: bool) -> None:
    width = max([len(e['key']) for e in plan] + [4])
    print(f'{len(plan)} cells selected:')
    for i, e in enumerate(plan):
        action = 'run' if to_run(e, force) else 'skip'
        config = e['config']
        if config.startswith(REPO_ROOT + os.sep):
            config = osp.relpath(config, REPO_ROOT)
        print(f'  {i:3d} {e["key"]:<{width}}  {e["state"]:<12} {action:<4}  '
              f'{config}')


def print_summary(plan: List[dict]) -> None:
    rows = []
    for e in plan:
        run = collect_results.read_run(e['work_dir']) if osp.isdir(
            e['work_dir']) else None
        status = read_status(e['work_dir']) or {}
        summary = run['summary'] if run else {}
        rows.append((e['key'], status.get('status', e['state']),
                     str(run['iters'] if run and run['iters'] else ''),
                     collect_results.format_duration(status.get('wall_s')
                                                     or (run or {}).get(
                                                         'wall_s')) or '',
                     f'{summary["mIoU"]:.2f}' if 'mIoU' in summary else ''))
    head = ('cell', 'status', 'iters', 'wall', 'mIoU')
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(5)]
    print('\nsummary:')
    for r in [head] + rows:
        print('  ' + '  '.join(c.ljust(w) for c, w in zip(r, widths)))


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.run_cell:
        return run_array_task(args.run_cell[0], int(args.run_cell[1]))
    study = load_study(args) if args.study else None
    plan = make_plan(args, study)
    if not plan:
        print('no cell matches the selection')
        return 1
    print_plan(plan, args.force)
    todo = [e for e in plan if to_run(e, args.force)]
    launcher = 'slurm' if args.slurm else 'dist' if args.dist else 'local'
    if args.study and todo:
        ensure_class_stats(study, args.python, args.dry_run)
    if not todo:
        print('nothing to run: every selected cell is done')
        print_summary(plan)
        return 0
    if args.slurm:
        rc = submit_slurm(args, todo)
        if args.wait and not args.dry_run:
            print_summary(plan)
        return rc
    if args.dry_run:
        print('\nwould run, one after another:')
        for e in todo:
            print('  ' + shlex.join(train_command(
                e, launcher, args.gpus, args.python, args.cfg_options)))
        return 0
    failed = 0
    t0 = time.time()
    for i, e in enumerate(todo, 1):
        prefix = f'[{i}/{len(todo)}]'
        print(f'{prefix} {e["key"]} ({e["state"]}) -> {e["work_dir"]}',
              flush=True)
        status = run_cell(e, launcher, args.gpus, args.python,
                          args.cfg_options, args.verbose, prefix)
        took = collect_results.format_duration(status['wall_s'])
        if status['status'] == 'done':
            print(f'{prefix} {e["key"]} done ({took} in all)', flush=True)
        else:
            failed += 1
            print(f'{prefix} {e["key"]} FAILED (exit {status["returncode"]}'
                  f'); log: {osp.join(e["work_dir"], "grid_train.log")}',
                  flush=True)
        left = len(todo) - i
        if left:
            eta = (time.time() - t0) / i * left
            print(f'{prefix} {left} left, about '
                  f'{collect_results.format_duration(eta)} to go', flush=True)
    print_summary(plan)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
