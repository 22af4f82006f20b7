"""Run a study's cells one after another, with torchrun or as a SLURM job
array: each trains (``--resume``), is tested on the report split and leaves
a run record; a cell with a record is done, so a study resumes from them."""
import datetime
import os
import os.path as osp
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import List, Optional, Sequence

from ..engine.hooks.preemption_hook import PREEMPTED_EXIT_CODE
from .cells import Cell, filter_cells, match, plan_cells, run_name
from .collect import format_duration, gather, git_commit, record_from_work_dir
from .records import (RunRecord, RunStatus, atomic_write_json,
                      atomic_write_text, last_checkpoint, last_checkpoint_iter,
                      pop_stop_reason, read_json)
from .render import GRID_DIR_NAME, data_base_path, render_cell_configs
from .spec import REPO_ROOT, TOOLS_DIR, Study, StudySource, rel_path


@dataclass
class PlannedRun:
    cell: Cell
    name: str
    config: str
    work_dir: str
    state: str  # done | running | resume@N | failed | new


@dataclass
class LaunchOptions:
    """How cells run (the options of tools/grid.py)."""
    launcher: str = 'local'  # local | dist | slurm
    gpus: int = 1
    python: str = sys.executable
    cfg_options: List[str] = field(default_factory=list)
    force: bool = False
    dry_run: bool = False
    verbose: bool = False


@dataclass
class SlurmOptions:
    partition: Optional[str] = None
    job_name: str = 'mmseglt-grid'
    gpus_per_node: Optional[int] = None
    cpus_per_task: int = 5
    mem: Optional[str] = None
    time: Optional[str] = None
    max_parallel: Optional[int] = None
    sbatch_args: str = ''
    wait: bool = False
    signal_seconds: int = 180  # --signal=B:USR1@N --requeue; 0: neither


def _slurm_job_active(job_id: str) -> bool:
    try:
        out = subprocess.run(['squeue', '-h', '-j', job_id, '-o', '%T'],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and bool(out.stdout.strip())


def cell_state(study: Study, name: str, work_dir: str) -> str:
    """done (a record) | running (a live SLURM task) | resume@N | failed |
    new. A finished run without its record resumes: it only tests."""
    if osp.isfile(RunRecord.path_in(study.results_dir, name)):
        return 'done'
    status = RunStatus.read(work_dir, 'the cell is treated as unfinished '
                            '(its checkpoints are resumed)')
    if (status and status.state in ('running', 'testing')
            and status.slurm_job and _slurm_job_active(status.slurm_job)):
        return 'running'
    if (it := last_checkpoint_iter(work_dir)) is not None:
        return f'resume@{it}'
    return 'failed' if status and status.state == 'failed' else 'new'


def make_plan(study: Study, datasets: Sequence[str] = (),
              models: Sequence[str] = (), losses: Sequence[str] = (),
              seeds: Optional[Sequence[int]] = None,
              dry_run: bool = False) -> List[PlannedRun]:
    """Selected cells (further seeds once selected) with configs, states."""
    cells, pending = plan_cells(study, {
        g: s.variant for g, s in gather(study, []).selections().items()
        if s.complete})
    cells = filter_cells(study, cells, datasets or None, models or None,
                         losses or None, seeds)
    patterns = (datasets, models, [p.split(':')[0] for p in losses or ()])
    pending = [g for g in pending
               if all(match(k, p) for k, p in zip(g, patterns))]
    if pending:
        print(f'{len(pending)} (data set, model, loss) groups wait for their '
              'sweep before their further seeds are planned: ' + ', '.join(
                  '/'.join(g) for g in pending[:6]) +
              (' ...' if len(pending) > 6 else ''))
    configs = render_cell_configs(study, cells, dry_run)
    names = {c: run_name(study, c) for c in cells}
    dirs = {c: osp.join(study.work_root, n) for c, n in names.items()}
    return [PlannedRun(c, names[c], configs[c], dirs[c],
                       cell_state(study, names[c], dirs[c])) for c in cells]


def ensure_class_stats(study: Study, plan: Sequence[PlannedRun],
                       dry_run: bool) -> None:
    """Write the missing class statistics of the planned data sets."""
    for d in sorted({r.cell.dataset for r in plan}):
        ds, base = study.datasets[d], data_base_path(study, d)
        path, what = ds.class_stats_file, f'class statistics ({d}): '
        if osp.isfile(path):
            print(what + rel_path(path))
        elif dry_run:
            print(f'{what}{rel_path(path)} missing; would write it from the '
                  f'training split of {rel_path(base)}')
        elif ds.data_root and not osp.isdir(ds.data_root):
            raise SystemExit(f'data root {ds.data_root} not found: pass '
                             '--data-root (or set data_root in the spec)')
        else:
            print(f'{what}writing {rel_path(path)}', flush=True)
            from mmseg_longtail.analysis.class_stats import write_class_stats
            write_class_stats(base, path)


def tool_command(run: PlannedRun, opts: LaunchOptions,
                 checkpoint: Optional[str] = None) -> List[str]:
    """tools/train.py (with ``checkpoint``: test.py) under the launcher."""
    tool = 'train' if checkpoint is None else 'test'
    head = [run.config] + ([checkpoint] if checkpoint else [])
    args = (['--work-dir', run.work_dir] +
            (['--resume'] if checkpoint is None else []) +
            ['--cfg-options', f'randomness.seed={run.cell.seed}'] +
            list(opts.cfg_options))
    script = osp.join(TOOLS_DIR, f'{tool}.py')
    if opts.launcher == 'local':
        return [opts.python, script] + head + args
    if opts.launcher == 'dist':  # dist_{train,test}.sh CONFIG [CKPT] GPUS
        return (['bash', osp.join(TOOLS_DIR, f'dist_{tool}.sh')] + head +
                [str(opts.gpus)] + args)
    if opts.launcher != 'slurm':
        raise ValueError(f'unknown launcher {opts.launcher!r}')
    # port from the job id (tasks may share a node); 1 task: no process group
    prelude = ('export MASTER_PORT=${MASTER_PORT:-'
               '$((20000 + SLURM_JOB_ID % 40000))}; exec "$@"')
    return (['srun', '--kill-on-bad-exit=1', 'bash', '-c', prelude,
             'srun-task', opts.python, '-u', script] + head + args +
            (['--launcher', 'slurm'] if opts.gpus > 1 else []))


def _now() -> str:
    return datetime.datetime.now().isoformat(timespec='seconds')


def _stream(cmd: List[str], log_path: str, env: dict, verbose: bool,
            prefix: str, got: list) -> int:
    """Run ``cmd``, its output appended to ``log_path`` (echoed if ``verbose``,
    else a heartbeat every 30 s). SIGUSR1 / SIGTERM go on to it, a first
    SIGINT (Ctrl-C reaches it) is only noted, a second aborts; see ``got``."""
    heartbeat = re.compile(r'Iter\((train|val|test)\)\s*\[\s*\d+/\d+\]')
    last = 0.0
    with open(log_path, 'a') as log:
        print(f'\n# {_now()} {shlex.join(cmd)}', file=log, flush=True)
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True,
                                errors='replace')

        def handler(signum, frame):
            if signum != signal.SIGINT:
                proc.send_signal(signum)
            elif signum in got:
                raise KeyboardInterrupt
            got.append(signum)

        main = threading.current_thread() is threading.main_thread()
        previous = {s: signal.signal(s, handler) for s in (
            signal.SIGUSR1, signal.SIGTERM, signal.SIGINT) if main}
        try:
            for line in proc.stdout:
                log.write(line)
                if verbose:
                    sys.stdout.write(line)
                elif time.time() > last + 30 and (m := heartbeat.search(line)):
                    print(f'{prefix}    {m.group(0)}', flush=True)
                    last = time.time()
            return proc.wait()
        finally:
            for s, h in previous.items():
                signal.signal(s, h)


def run_cell(study: Study, run: PlannedRun, opts: LaunchOptions,
             prefix: str = '') -> RunStatus:
    """Train, test and record one cell; returns its final status."""
    work_dir = run.work_dir
    os.makedirs(work_dir, exist_ok=True)
    previous = (RunStatus.read(work_dir, 'writing a new status')
                or RunStatus(cell={}))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(  # this checkout
        p for p in (REPO_ROOT, os.environ.get('PYTHONPATH')) if p))
    if opts.launcher == 'dist':
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            env.setdefault('PORT', str(s.getsockname()[1]))
    job = (f'{env["SLURM_ARRAY_JOB_ID"]}_{env["SLURM_ARRAY_TASK_ID"]}'
           if 'SLURM_ARRAY_JOB_ID' in env else env.get('SLURM_JOB_ID'))
    cmd = tool_command(run, opts)
    status = RunStatus(
        cell=run.cell.to_dict(), config=run.config, work_dir=work_dir,
        study=study.name, state='running', launcher=opts.launcher,
        gpus=opts.gpus, cfg_options=list(opts.cfg_options),
        command=shlex.join(cmd), host=socket.gethostname(), slurm_job=job,
        started=_now(), attempts=previous.attempts + 1,
        wall_s=previous.wall_s).write()
    started, log_path = time.time(), osp.join(work_dir, 'grid_train.log')
    pop_stop_reason(work_dir)  # a stale one from an earlier attempt
    signals: list = []
    rc = _stream(cmd, log_path, env, opts.verbose, prefix, signals)
    # 75 from PreemptionHook; after a signal, any failure too (srun may
    # report a rank it killed when the ranks' exits race)
    if rc == PREEMPTED_EXIT_CODE or (signals and rc != 0):
        state = 'preempted'  # the next attempt resumes from the checkpoint
        reason = (f'preempted after iteration {last_checkpoint_iter(work_dir)}'
                  ': checkpoint written, resumes from it')
    else:
        reason = '' if rc == 0 else (pop_stop_reason(work_dir) or
                                     f'tools/train.py exited {rc}')
        ckpt = last_checkpoint(work_dir)
        if rc == 0 and ckpt is None:
            rc, reason = 1, 'training left no checkpoint to evaluate'
        if rc == 0:
            status.update(state='testing')
            rc = _stream(tool_command(run, opts, ckpt), log_path, env,
                         opts.verbose, prefix, [])
            reason = '' if rc == 0 else f'tools/test.py exited {rc}'
        state = 'done' if rc == 0 else 'failed'
    status.update(state=state, reason=reason, returncode=rc, finished=_now(),
                  wall_s=status.wall_s + time.time() - started,
                  last_iter=last_checkpoint_iter(work_dir))
    if state == 'done' and study.results_dir:
        rec = record_from_work_dir(study, work_dir, status)
        rec.commit = git_commit()
        if rec.selection is None or rec.report is None:
            status.update(state='failed', reason='no metric records (is the '
                          "evaluator LongTailIoUMetric?)")
        else:
            rec.save(study.results_dir)
    return status


def submit_slurm(study: Study, source: StudySource, todo: List[PlannedRun],
                 opts: LaunchOptions, slurm: SlurmOptions) -> int:
    """Submit ``todo`` as one job array (``slurm.wait``: wait for it)."""
    stamp = datetime.datetime.now().strftime('%Y%m%d_%H%M%S')
    grid_dir = osp.join(study.work_root, GRID_DIR_NAME)
    plan_path = osp.join(grid_dir, f'plan_{stamp}.json')
    script_path = osp.join(grid_dir, f'submit_{stamp}.sh')
    gpn = opts.gpus if slurm.gpus_per_node is None else slurm.gpus_per_node
    array = f'0-{len(todo) - 1}' + (f'%{slurm.max_parallel}'
                                    if slurm.max_parallel else '')
    flags = [f'--job-name={slurm.job_name}', f'--array={array}',
             f'--ntasks={opts.gpus}', f'--cpus-per-task={slurm.cpus_per_task}',
             f'--ntasks-per-node={min(gpn or opts.gpus, opts.gpus)}',
             f'--output={grid_dir}/logs/%A_%a.out']
    flags += [f'--{k}={v}' for k, v in (
        ('gres', gpn > 0 and f'gpu:{gpn}'), ('partition', slurm.partition),
        ('mem', slurm.mem), ('time', slurm.time)) if v]
    command = (f'{shlex.quote(opts.python)} -u '
               f'{shlex.quote(osp.join(TOOLS_DIR, "grid.py"))} --run-cell '
               f'{shlex.quote(plan_path)} "$SLURM_ARRAY_TASK_ID"')
    body = [f'exec {command}']
    if slurm.signal_seconds > 0:
        # warned before the time limit: checkpoint, exit 75, requeue
        flags += ['--requeue', f'--signal=B:USR1@{slurm.signal_seconds}',
                  '--open-mode=append']
        preemptible = osp.join(TOOLS_DIR, 'slurm', 'preemptible.sh')
        body = [f'source {shlex.quote(preemptible)}',
                f'run_preemptible {command}']
    script = '\n'.join(
        ['#!/usr/bin/env bash'] + [f'#SBATCH {f}' for f in flags] +
        ['# one array task = one cell; written by tools/grid.py',
         f'cd {shlex.quote(os.getcwd())}'] + body) + '\n'
    cmd = (['sbatch', '--parsable'] + (['--wait'] if slurm.wait else []) +
           shlex.split(slurm.sbatch_args) + [script_path])
    if opts.dry_run:
        print(f'\nsbatch script ({script_path}):\n{script}\n'
              f'would run: {shlex.join(cmd)}')
        return 0
    os.makedirs(osp.join(grid_dir, 'logs'), exist_ok=True)
    atomic_write_json(plan_path, dict(source=asdict(source), opts=asdict(opts),
                                      runs=[asdict(r) for r in todo]))
    atomic_write_text(script_path, script)
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
    if not slurm.wait:
        if rc == 0:
            print('when it ends: ' + study.command('tools/collect_results.py'))
        return rc
    if job_id and _slurm_job_active(job_id):
        # sbatch --wait may return while a requeued task is pending again
        print(f'job array {job_id}: sbatch returned ({rc}) while tasks '
              'are still queued (requeued); waiting for them', flush=True)
        while _slurm_job_active(job_id):
            time.sleep(5)
        rc = int(any(cell_state(study, r.name, r.work_dir) != 'done'
                     for r in todo))
    print(f'job array {job_id} ended (sbatch exit {rc})')
    return rc


def run_array_task(plan_path: str, index: int) -> int:
    """One SLURM array task (tools/grid.py --run-cell)."""
    plan = read_json(plan_path, 'grid plan')
    run = plan['runs'][index]
    run = PlannedRun(**{**run, 'cell': Cell.from_dict(run['cell'])})
    study = StudySource(**plan['source']).load()
    if cell_state(study, run.name, run.work_dir) == 'done':
        print(f'{run.cell.key}: already done, nothing to run')
        return 0
    print(f'{run.cell.key}: training {run.config} in {run.work_dir}',
          flush=True)
    opts = LaunchOptions(**dict(plan['opts'], verbose=True))
    return int(run_cell(study, run, opts).returncode or 0)


def run_study(study: Study, plan: List[PlannedRun], opts: LaunchOptions,
              slurm: SlurmOptions, source: StudySource) -> int:
    """Print the plan, run the cells not done (``force``: all not running)."""
    if not plan:
        print('no cell matches the selection')
        return 1
    todo = [r for r in plan if r.state != 'running'
            and (opts.force or r.state != 'done')]
    width = max([len(r.cell.key) for r in plan] + [4])
    print(f'{len(plan)} cells selected:')
    for i, r in enumerate(plan):
        print(f'  {i:3d} {r.cell.key:<{width}}  {r.state:<12} '
              f'{"run" if r in todo else "skip":<4}  {rel_path(r.config)}')
    ensure_class_stats(study, todo, opts.dry_run)
    rc = 0
    if not todo:
        print('nothing to run: every selected cell is done')
    elif opts.launcher == 'slurm':
        rc = submit_slurm(study, source, todo, opts, slurm)
        if not slurm.wait or opts.dry_run:
            return rc
    elif opts.dry_run:
        print('\nwould run, one after another (each then tested on the '
              'report split):')
        for r in todo:
            print('  ' + shlex.join(tool_command(r, opts)))
        return 0
    else:  # here, one after another; a preempted cell stops the grid
        t0 = time.time()
        for i, r in enumerate(todo, 1):
            prefix, left = f'[{i}/{len(todo)}]', len(todo) - i
            say = f'{prefix} {r.cell.key}'
            print(f'{say} ({r.state}) -> {r.work_dir}', flush=True)
            status = run_cell(study, r, opts, prefix)
            if status.state == 'preempted':
                print(f'{say} {status.reason}; stopping the grid (exit '
                      f'{PREEMPTED_EXIT_CODE}), run it again to continue',
                      flush=True)
                return PREEMPTED_EXIT_CODE
            rc = max(rc, int(status.state != 'done'))
            eta = format_duration((time.time() - t0) / i * left)
            log = osp.join(r.work_dir, 'grid_train.log')
            print(say + (f' done ({format_duration(status.wall_s)} in all)'
                         if status.state == 'done' else
                         f' FAILED ({status.reason}); log: {log}') +
                  (f'; {left} left, about {eta} to go' if left else ''),
                  flush=True)
    from .tables import PaperTables
    roots = [study.work_root] if osp.isdir(study.work_root) else []
    table = PaperTables(gather(study, roots)).runs([r.cell for r in plan])
    table.rows = [row for row in table.rows if row[0] in {
        r.name for r in plan}]
    print('\nsummary:\n' + table.to_markdown(title=False))
    return rc
