"""Run the cells of a study: the paper grid by default, or ``--study SPEC``.

    # plan only: which cells, which are done / to resume / new
    python tools/grid.py --datasets camvid --models 'unet*' --dry-run
    # one after another in this shell (tools/train.py, then tools/test.py)
    python tools/grid.py --datasets camvid --losses ce,pat
    # one after another, each on 4 GPUs (tools/dist_train.sh)
    python tools/grid.py --datasets camvid --dist --gpus 4
    # one SLURM job array, one array task per cell
    python tools/grid.py --datasets cityscapes --slurm --partition gpu \\
        --gpus 4 --gpus-per-node 4 --cpus-per-task 5 --max-parallel 8
    # a study spec (its own data, models, sweeps and seeds)
    python tools/grid.py --study configs/camvid_study/study_cpu.py

Cells are selected with glob patterns on the spec's keys (a loss pattern
may name a variant: ``ldam:s5*``); each axis takes several patterns, comma-
or space-separated. Every cell trains, is evaluated on the report split and
writes a run record into the study's results folder; a cell with a record
is done and skipped, any other cell is (re)started with ``--resume``.
docs/grid.md describes specs, sweeps and the selection protocol.
"""
import argparse
import sys
from typing import Optional, Sequence

from mmseg_longtail.experiments import commands
from mmseg_longtail.experiments.cells import split_patterns
from mmseg_longtail.experiments.launch import (LaunchOptions, SlurmOptions,
                                               run_array_task)
from mmseg_longtail.experiments.spec import PAPER_GRID, StudySource


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description='Run the cells of a study (default: the paper grid)',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__)
    sel = p.add_argument_group('selection')
    sel.add_argument('--study', metavar='SPEC',
                     help=f'a study spec (default: {PAPER_GRID})')
    sel.add_argument('--full-res', action='store_true',
                     help="the spec's `full_res` variant")
    for axis in ('datasets', 'models', 'losses'):
        sel.add_argument(f'--{axis}', nargs='+', metavar='GLOB',
                         help=f'keys of the spec\'s {axis}')
    sel.add_argument('--seeds', nargs='+', metavar='N',
                     help="only these of the spec's seeds")
    sel.add_argument('--data-root', help='the data root of a one-data-set '
                     "study (default: the spec's)")
    run = p.add_argument_group('running')
    run.add_argument('--work-root', help="work dirs' parent (default: the "
                     "spec's work_root)")
    run.add_argument('--results-dir', help="run records' folder (default: "
                     "the spec's results_dir)")
    mode = run.add_mutually_exclusive_group()
    mode.add_argument('--dist', action='store_true',
                      help='each cell with tools/dist_train.sh on --gpus '
                      'processes')
    mode.add_argument('--slurm', action='store_true',
                      help='submit one SLURM job array (sbatch --array)')
    run.add_argument('--gpus', type=int, default=1,
                     help='processes per cell (--dist: NGPUS; --slurm: '
                     'tasks)')
    run.add_argument('--force', action='store_true',
                     help='also run cells that are done')
    run.add_argument('--dry-run', action='store_true',
                     help='print the plan (and the sbatch script) only')
    run.add_argument('--verbose', action='store_true',
                     help='stream the training output (local / --dist)')
    run.add_argument('--python', default=sys.executable,
                     help='interpreter for tools/train.py')
    run.add_argument('--cfg-options', nargs='+', default=[],
                     metavar='KEY=VALUE',
                     help='passed to tools/train.py and tools/test.py')
    sl = p.add_argument_group('SLURM (--slurm)')
    sl.add_argument('--partition')
    sl.add_argument('--job-name', default='mmseglt-grid')
    sl.add_argument('--gpus-per-node', type=int, default=None,
                    help='GPUs per node (default: --gpus); 0 on CPU nodes: '
                    'no --gres')
    sl.add_argument('--cpus-per-task', type=int, default=5)
    sl.add_argument('--mem', help='sbatch --mem, e.g. 32G')
    sl.add_argument('--time', help='sbatch --time, e.g. 1-00:00:00')
    sl.add_argument('--max-parallel', type=int, default=None,
                    help='array tasks running at once (--array=...%%N)')
    sl.add_argument('--sbatch-args', default='',
                    help='extra sbatch arguments, one string')
    sl.add_argument('--wait', action='store_true',
                    help='wait for the job array (sbatch --wait)')
    sl.add_argument('--signal-seconds', type=int, default=180,
                    help='preemptible array tasks: SLURM warns a task this '
                    'many seconds before its time limit (--signal=B:USR1@N '
                    '--requeue); the training checkpoints, and the task '
                    'requeues itself and resumes. 0: neither flag')
    p.add_argument('--run-cell', nargs=2, metavar=('PLAN', 'INDEX'),
                   help=argparse.SUPPRESS)  # one array task (internal)
    args = p.parse_args(argv)
    for axis in ('datasets', 'models', 'losses'):
        setattr(args, axis, split_patterns(getattr(args, axis)))
    try:
        args.seeds = [int(x) for x in split_patterns(args.seeds)] or None
    except ValueError:
        p.error('--seeds takes integers')
    if args.gpus < 1:
        p.error('--gpus must be >= 1')
    for opt in args.cfg_options:
        if '=' not in opt:
            p.error(f'--cfg-options: {opt!r} is not KEY=VALUE')
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    a = parse_args(argv)
    if a.run_cell:
        return run_array_task(a.run_cell[0], int(a.run_cell[1]))
    return commands.grid(
        StudySource(a.study, a.full_res, a.data_root,
                    a.work_root, a.results_dir),
        a.datasets, a.models, a.losses, a.seeds,
        LaunchOptions(
            launcher='slurm' if a.slurm else 'dist' if a.dist else 'local',
            gpus=a.gpus, python=a.python, cfg_options=a.cfg_options,
            force=a.force, dry_run=a.dry_run, verbose=a.verbose),
        SlurmOptions(a.partition, a.job_name, a.gpus_per_node,
                     a.cpus_per_task, a.mem, a.time, a.max_parallel,
                     a.sbatch_args, a.wait, a.signal_seconds))


if __name__ == '__main__':
    sys.exit(main())
