"""Run a study's cells: one after another, with torchrun, or as a SLURM job
array; idempotent and resumable.

Each cell trains with tools/train.py (``--resume``: an interrupted cell
continues from its last checkpoint), is evaluated once on the report split
with tools/test.py, and leaves a run record in the study's results folder.
A cell whose record exists is done: the bookkeeping of a study continues on
any machine from the committed records alone.
"""
import datetime
import json
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
from .cells import Cell, match, filter_cells, plan_cells, run_name
from .collect import (format_duration, gather, git_commit,
                      record_from_work_dir)
from .records import (RecordError, RunRecord, RunStatus, last_checkpoint,
                      last_checkpoint_iter, pop_stop_reason)
from .render import GRID_DIR_NAME, data_base_path, render_cell_configs
from .spec import REPO_ROOT, TOOLS_DIR, Study, StudySource, rel_path


@dataclass
class PlannedRun:
    cell: Cell
    name: str
    config: str
    work_dir: str
    state: str  # done | running | resume@N | failed | new

    @property
    def key(self) -> str:
        return self.cell.key

    def to_dict(self) -> dict:
        d = asdict(self)
        d['cell'] = self.cell.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> 'PlannedRun':
        return cls(**{**d, 'cell': Cell.from_dict(d['cell'])})


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


# ------------------------------------------------------------------- plan
def _slurm_job_active(job_id: str) -> bool:
    try:
        out = subprocess.run(['squeue', '-h', '-j', job_id, '-o', '%T'],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and bool(out.stdout.strip())


def cell_state(study: Study, name: str, work_dir: str) -> str:
    """done (a committed record) | running (a live SLURM task) | resume@N |
    failed | new. A finished run whose record is missing resumes: training
    ends at once, the report split is evaluated and the record written. A
    corrupt status file is reported and the cell treated as unfinished."""
    if osp.isfile(RunRecord.path_in(study.results_dir, name)):
        return 'done'
    try:
        status = RunStatus.read(work_dir)
    except RecordError as e:
        print(f'warning: {e}; the cell is treated as unfinished (its '
              'checkpoints are resumed)', flush=True)
        status = None
    if (status and status.state in ('running', 'testing')
            and status.slurm_job and _slurm_job_active(status.slurm_job)):
        return 'running'
    it = last_checkpoint_iter(work_dir)
    if it is not None:
        return f'resume@{it}'
    return 'failed' if status and status.state == 'failed' else 'new'


def make_plan(study: Study, datasets: Sequence[str] = (),
              models: Sequence[str] = (), losses: Sequence[str] = (),
              seeds: Optional[Sequence[int]] = None,
              dry_run: bool = False) -> List[PlannedRun]:
    """The selected cells of a study with their configs (rendered unless
    ``dry_run``), work dirs and states. Cells of further seeds wait for
    their variant's selection: they are planned once the sweep of their
    group has finished."""
    results = gather(study, [])
    selections = {g: s.variant for g, s in results.selections().items()
                  if s.complete}
    cells, pending = plan_cells(study, selections)
    cells = filter_cells(study, cells, datasets or None, models or None,
                         losses or None, seeds)
    loss_keys = [p.split(':')[0] for p in losses or ()]
    pending = [g for g in pending
               if match(g[0], datasets) and match(g[1], models)
               and match(g[2], loss_keys)]
    if pending:
        print(f'{len(pending)} (data set, model, loss) groups wait for their '
              'sweep before their further seeds are planned: ' + ', '.join(
                  '/'.join(g) for g in pending[:6]) +
              (' ...' if len(pending) > 6 else ''))
    configs = render_cell_configs(study, cells, dry_run)
    plan = []
    for c in cells:
        name = run_name(study, c)
        work_dir = osp.join(study.work_root, name)
        plan.append(PlannedRun(c, name, configs[c], work_dir,
                               cell_state(study, name, work_dir)))
    return plan


def to_run(run: PlannedRun, force: bool) -> bool:
    if run.state == 'running':
        return False
    return force or run.state != 'done'


def ensure_class_stats(study: Study, plan: Sequence[PlannedRun],
                       dry_run: bool) -> None:
    """Write each planned data set's class statistics from its training
    split (after the carve) when the file is missing."""
    from mmseg_longtail.analysis.class_stats import write_class_stats
    for d in sorted({r.cell.dataset for r in plan}):
        ds = study.datasets[d]
        path = ds.class_stats_file
        if osp.isfile(path):
            print(f'class statistics ({d}): {rel_path(path)}')
            continue
        base = data_base_path(study, d)
        if dry_run:
            print(f'class statistics ({d}): {rel_path(path)} missing; would '
                  f'write it from the training split of {rel_path(base)}')
            continue
        if ds.data_root and not osp.isdir(ds.data_root):
            raise SystemExit(f'data root {ds.data_root} not found: pass '
                             '--data-root (or set data_root in the spec)')
        print(f'class statistics ({d}): writing {rel_path(path)}',
              flush=True)
        write_class_stats(base, path)


# -------------------------------------------------------------------- run
def _repo_env() -> dict:
    """The environment with the repository on PYTHONPATH (subprocesses
    import mmseg_longtail from this checkout)."""
    env = dict(os.environ)
    env['PYTHONPATH'] = REPO_ROOT + (os.pathsep + env['PYTHONPATH']
                                     if env.get('PYTHONPATH') else '')
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _launch(tool: str, args: List[str], opts: LaunchOptions) -> List[str]:
    """``tools/<tool>.py ARGS`` under the launcher (local | dist | slurm)."""
    if opts.launcher == 'local':
        return [opts.python, osp.join(TOOLS_DIR, f'{tool}.py')] + args
    if opts.launcher == 'dist':
        # dist_train.sh CONFIG GPUS ...; dist_test.sh CONFIG CKPT GPUS ...
        n = 2 if tool == 'test' else 1
        return (['bash', osp.join(TOOLS_DIR, f'dist_{tool}.sh')] + args[:n]
                + [str(opts.gpus)] + args[n:])
    if opts.launcher == 'slurm':
        # a step over all tasks of the array task's allocation; the port
        # comes from the job id so array tasks sharing a node do not clash.
        # One task needs no process group (SyncBN then falls back to BN,
        # which matters on CPU nodes).
        prelude = ('export MASTER_PORT=${MASTER_PORT:-'
                   '$((20000 + SLURM_JOB_ID % 40000))}; exec "$@"')
        dist = ['--launcher', 'slurm'] if opts.gpus > 1 else []
        return ['srun', '--kill-on-bad-exit=1', 'bash', '-c', prelude,
                'srun-task', opts.python, '-u',
                osp.join(TOOLS_DIR, f'{tool}.py')] + args + dist
    raise ValueError(f'unknown launcher {opts.launcher!r}')


def _cfg_options(run: PlannedRun, opts: LaunchOptions) -> List[str]:
    return [f'randomness.seed={run.cell.seed}'] + list(opts.cfg_options)


def train_command(run: PlannedRun, opts: LaunchOptions) -> List[str]:
    return _launch('train', [run.config, '--work-dir', run.work_dir,
                             '--resume', '--cfg-options'] +
                   _cfg_options(run, opts), opts)


def test_command(run: PlannedRun, checkpoint: str,
                 opts: LaunchOptions) -> List[str]:
    return _launch('test', [run.config, checkpoint, '--work-dir',
                            run.work_dir, '--cfg-options'] +
                   _cfg_options(run, opts), opts)


def _slurm_job_id() -> Optional[str]:
    """``<array job>_<task>`` inside an array task, the job id in a job."""
    if 'SLURM_ARRAY_JOB_ID' in os.environ:
        return (f'{os.environ["SLURM_ARRAY_JOB_ID"]}_'
                f'{os.environ["SLURM_ARRAY_TASK_ID"]}')
    return os.environ.get('SLURM_JOB_ID')


def _now() -> str:
    return datetime.datetime.now().isoformat(timespec='seconds')


# passed on to the running training, whose PreemptionHook acts on them
FORWARDED_SIGNALS = (signal.SIGUSR1, signal.SIGTERM)


def _stream(cmd: List[str], log_path: str, env: dict, verbose: bool,
            prefix: str, forwarded: Optional[list] = None) -> int:
    """Run ``cmd``, its output appended to ``log_path``; a heartbeat line
    every 30 s unless ``verbose`` (then everything is echoed). SIGUSR1 and
    SIGTERM sent to this process go on to ``cmd`` (a scheduler's warning
    must reach the training, not stop the launcher); their numbers are
    appended to ``forwarded``. Ctrl-C reaches ``cmd`` from the terminal
    (one process group), so SIGINT is only recorded: the training stops with
    its checkpoint, and a second Ctrl-C aborts both at once."""
    last = 0.0
    with open(log_path, 'a') as log:
        log.write(f'\n# {datetime.datetime.now():%Y-%m-%d %H:%M:%S} '
                  f'{shlex.join(cmd)}\n')
        log.flush()
        proc = subprocess.Popen(cmd, env=env,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True,
                                errors='replace')
        previous = {}
        got = [] if forwarded is None else forwarded

        def forward(signum, frame):
            got.append(signum)
            proc.send_signal(signum)

        def interrupted(signum, frame):
            if signal.SIGINT in got:
                raise KeyboardInterrupt
            got.append(signum)

        if threading.current_thread() is threading.main_thread():
            for s in FORWARDED_SIGNALS:
                previous[s] = signal.signal(s, forward)
            previous[signal.SIGINT] = signal.signal(signal.SIGINT,
                                                    interrupted)
        try:
            for line in proc.stdout:
                log.write(line)
                if verbose:
                    sys.stdout.write(line)
                elif 'Iter(' in line and time.time() - last > 30:
                    m = re.search(
                        r'Iter\((train|val|test)\)\s*\[\s*\d+/\d+\]', line)
                    if m:
                        print(f'{prefix}    {m.group(0)}', flush=True)
                        last = time.time()
            return proc.wait()
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


def run_cell(study: Study, run: PlannedRun, opts: LaunchOptions,
             prefix: str = '') -> RunStatus:
    """Train one cell, evaluate its final checkpoint on the report split
    and write its run record; returns the final status."""
    work_dir = run.work_dir
    os.makedirs(work_dir, exist_ok=True)
    try:
        previous = RunStatus.read(work_dir)
    except RecordError as e:
        print(f'warning: {e}; writing a new status', flush=True)
        previous = None
    env = _repo_env()
    if opts.launcher == 'dist':
        env.setdefault('PORT', str(_free_port()))
    cmd = train_command(run, opts)
    status = RunStatus(
        cell=run.cell.to_dict(), config=run.config, work_dir=work_dir,
        study=study.name, state='running', launcher=opts.launcher,
        gpus=opts.gpus, cfg_options=list(opts.cfg_options),
        command=shlex.join(cmd), host=socket.gethostname(),
        slurm_job=_slurm_job_id(), started=_now(),
        attempts=(previous.attempts if previous else 0) + 1,
        wall_s=previous.wall_s if previous else 0.0).write()
    started = time.time()
    log_path = osp.join(work_dir, 'grid_train.log')
    pop_stop_reason(work_dir)  # a stale one from an earlier attempt
    signals: list = []
    rc = _stream(cmd, log_path, env, opts.verbose, prefix, signals)
    # 75 from PreemptionHook; srun may report a rank it terminated instead
    # (--kill-on-bad-exit) when the ranks' exits after the checkpoint race
    if rc == PREEMPTED_EXIT_CODE or (signals and rc != 0):
        # PreemptionHook wrote a checkpoint and stopped: the cell resumes
        # from it when it runs again (a requeued array task, the next grid.py)
        it = last_checkpoint_iter(work_dir)
        return status.update(
            state='preempted', returncode=rc,
            reason=f'preempted after iteration {it}: checkpoint written, '
            'resumes from it', wall_s=status.wall_s + time.time() - started,
            finished=_now(), last_iter=it)
    reason = '' if rc == 0 else (pop_stop_reason(work_dir) or
                                 f'tools/train.py exited {rc}')
    ckpt = last_checkpoint(work_dir)
    if rc == 0 and ckpt is None:
        rc, reason = 1, 'training left no checkpoint to evaluate'
    if rc == 0:
        status.update(state='testing')
        rc = _stream(test_command(run, ckpt, opts), log_path, env,
                     opts.verbose, prefix)
        reason = '' if rc == 0 else f'tools/test.py exited {rc}'
    status.update(
        state='done' if rc == 0 else 'failed', reason=reason, returncode=rc,
        wall_s=status.wall_s + time.time() - started, finished=_now(),
        last_iter=last_checkpoint_iter(work_dir))
    if rc == 0 and study.results_dir:
        rec = record_from_work_dir(study, work_dir, status)
        rec.commit = git_commit()
        if rec.selection is None or rec.report is None:
            status.update(state='failed', reason='no metric records (is the '
                          "evaluator LongTailIoUMetric?)")
        else:
            rec.save(study.results_dir)
    return status


# ----------------------------------------------------------------- SLURM
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
    # seconds before the time limit at which SLURM warns the job
    # (--signal=B:USR1@N, with --requeue); 0: neither
    signal_seconds: int = 180


def sbatch_script(opts: LaunchOptions, slurm: SlurmOptions, plan_path: str,
                  n: int) -> str:
    gpn = opts.gpus if slurm.gpus_per_node is None else slurm.gpus_per_node
    tasks_per_node = min(gpn, opts.gpus) if gpn > 0 else opts.gpus
    array = f'0-{n - 1}' + (f'%{slurm.max_parallel}'
                            if slurm.max_parallel else '')
    log_dir = osp.join(osp.dirname(plan_path), 'logs')
    lines = [
        '#!/usr/bin/env bash',
        f'#SBATCH --job-name={slurm.job_name}',
        f'#SBATCH --array={array}',
        f'#SBATCH --ntasks={opts.gpus}',
        f'#SBATCH --ntasks-per-node={tasks_per_node}',
        f'#SBATCH --cpus-per-task={slurm.cpus_per_task}',
        f'#SBATCH --output={log_dir}/%A_%a.out',
    ]
    if gpn > 0:
        lines.append(f'#SBATCH --gres=gpu:{gpn}')
    for flag, value in (('partition', slurm.partition), ('mem', slurm.mem),
                        ('time', slurm.time)):
        if value:
            lines.append(f'#SBATCH --{flag}={value}')
    command = (f'{shlex.quote(opts.python)} -u '
               f'{shlex.quote(osp.join(TOOLS_DIR, "grid.py"))} --run-cell '
               f'{shlex.quote(plan_path)} "$SLURM_ARRAY_TASK_ID"')
    lines.append('# one array task = one cell; written by tools/grid.py')
    if slurm.signal_seconds > 0:
        # preemptible: warned before the time limit, the training
        # checkpoints and exits 75, and the task requeues itself
        # (the log of a requeued task goes on after the first attempt's)
        lines[1:1] = ['#SBATCH --requeue',
                      f'#SBATCH --signal=B:USR1@{slurm.signal_seconds}',
                      '#SBATCH --open-mode=append']
        lines += [f'cd {shlex.quote(os.getcwd())}',
                  'source ' + shlex.quote(osp.join(TOOLS_DIR, 'slurm',
                                                   'preemptible.sh')),
                  f'run_preemptible {command}']
    else:
        lines += [f'cd {shlex.quote(os.getcwd())}', f'exec {command}']
    return '\n'.join(lines) + '\n'


def submit_slurm(study: Study, source: StudySource, todo: List[PlannedRun],
                 opts: LaunchOptions, slurm: SlurmOptions) -> int:
    stamp = datetime.datetime.now().strftime('%Y%m%d_%H%M%S')
    grid_dir = osp.join(study.work_root, GRID_DIR_NAME)
    plan_path = osp.join(grid_dir, f'plan_{stamp}.json')
    script_path = osp.join(grid_dir, f'submit_{stamp}.sh')
    script = sbatch_script(opts, slurm, plan_path, len(todo))
    cmd = ['sbatch', '--parsable'] + (['--wait'] if slurm.wait else []) + \
        shlex.split(slurm.sbatch_args) + [script_path]
    if opts.dry_run:
        print(f'\nsbatch script ({script_path}):\n{script}')
        print('would run: ' + shlex.join(cmd))
        return 0
    os.makedirs(osp.join(grid_dir, 'logs'), exist_ok=True)
    with open(plan_path, 'w') as f:
        json.dump(dict(source=asdict(source),
                       runs=[r.to_dict() for r in todo], gpus=opts.gpus,
                       python=opts.python, cfg_options=opts.cfg_options),
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
    if slurm.wait and job_id and _slurm_job_active(job_id):
        # `sbatch --wait` may return while a task that requeued itself
        # (a preempted cell) is pending again: wait for the whole array
        print(f'job array {job_id}: sbatch returned ({rc}) while tasks '
              'are still queued (requeued); waiting for them', flush=True)
        while _slurm_job_active(job_id):
            time.sleep(5)
        rc = 0 if all(cell_state(study, r.name, r.work_dir) == 'done'
                      for r in todo) else 1
    if slurm.wait:
        print(f'job array {job_id} ended (sbatch exit {rc})')
    elif rc == 0:
        print('when it ends: ' + study.command('tools/collect_results.py'))
    return rc


def run_array_task(plan_path: str, index: int) -> int:
    """Body of one SLURM array task (tools/grid.py --run-cell): the study
    is loaded from the plan's source, as the submitting command did."""
    with open(plan_path) as f:
        plan = json.load(f)
    study = StudySource(**plan['source']).load()
    run = PlannedRun.from_dict(plan['runs'][index])
    if cell_state(study, run.name, run.work_dir) == 'done':
        print(f'{run.key}: already done, nothing to run')
        return 0
    print(f'{run.key}: training {run.config} in {run.work_dir}', flush=True)
    opts = LaunchOptions(launcher='slurm', gpus=plan['gpus'],
                         python=plan['python'],
                         cfg_options=plan['cfg_options'], verbose=True)
    return int(run_cell(study, run, opts).returncode or 0)


# --------------------------------------------------------------- output
def print_plan(plan: List[PlannedRun], force: bool) -> None:
    width = max([len(r.key) for r in plan] + [4])
    print(f'{len(plan)} cells selected:')
    for i, r in enumerate(plan):
        action = 'run' if to_run(r, force) else 'skip'
        print(f'  {i:3d} {r.key:<{width}}  {r.state:<12} {action:<4}  '
              f'{rel_path(r.config)}')


def print_summary(study: Study, plan: List[PlannedRun]) -> None:
    """The runs table of the planned cells (records and work dirs)."""
    from .tables import PaperTables
    roots = [study.work_root] if osp.isdir(study.work_root) else []
    table = PaperTables(gather(study, roots)).runs([r.cell for r in plan])
    names = {r.name for r in plan}
    table.rows = [row for row in table.rows if row[0] in names]
    print('\nsummary:\n' + table.to_markdown(title=False))


def run_study(study: Study, plan: List[PlannedRun], opts: LaunchOptions,
              slurm: Optional[SlurmOptions] = None,
              source: Optional[StudySource] = None) -> int:
    """Run the cells of ``plan`` that are not done (all with ``force``);
    ``source`` (how the study was named) is needed by SLURM array tasks."""
    if not plan:
        print('no cell matches the selection')
        return 1
    print_plan(plan, opts.force)
    todo = [r for r in plan if to_run(r, opts.force)]
    if not todo:
        print('nothing to run: every selected cell is done')
        print_summary(study, plan)
        return 0
    ensure_class_stats(study, todo, opts.dry_run)
    if opts.launcher == 'slurm':
        rc = submit_slurm(study, source or StudySource(study.path), todo,
                          opts, slurm or SlurmOptions())
        if slurm and slurm.wait and not opts.dry_run:
            print_summary(study, plan)
        return rc
    if opts.dry_run:
        print('\nwould run, one after another (each then tested on the '
              'report split):')
        for r in todo:
            print('  ' + shlex.join(train_command(r, opts)))
        return 0
    failed, t0 = 0, time.time()
    for i, r in enumerate(todo, 1):
        prefix = f'[{i}/{len(todo)}]'
        print(f'{prefix} {r.key} ({r.state}) -> {r.work_dir}', flush=True)
        status = run_cell(study, r, opts, prefix)
        if status.state == 'done':
            print(f'{prefix} {r.key} done ({format_duration(status.wall_s)} '
                  'in all)', flush=True)
        elif status.state == 'preempted':
            # the signal was meant for the whole grid: stop here; the next
            # tools/grid.py resumes this cell from its checkpoint
            print(f'{prefix} {r.key} {status.reason}; stopping the grid '
                  f'(exit {PREEMPTED_EXIT_CODE}), run it again to continue',
                  flush=True)
            print_summary(study, plan)
            return PREEMPTED_EXIT_CODE
        else:
            failed += 1
            print(f'{prefix} {r.key} FAILED ({status.reason}); log: '
                  f'{osp.join(r.work_dir, "grid_train.log")}', flush=True)
        left = len(todo) - i
        if left:
            eta = (time.time() - t0) / i * left
            print(f'{prefix} {left} left, about {format_duration(eta)} to '
                  'go', flush=True)
    print_summary(study, plan)
    return 1 if failed else 0
