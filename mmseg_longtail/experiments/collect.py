"""A study's runs: its committed records and the work dirs (named by the
launcher's status) read into records; unfinished and failed runs apart."""
import glob
import json
import os
import os.path as osp
import subprocess
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from .cells import Cell
from .records import (STATUS_FILE, RecordError, RunRecord, RunStatus,
                      SplitMetrics, last_checkpoint_iter, latest_metric_record,
                      load_run_records, metric_curve)
from .selection import select_variants
from .spec import REPO_ROOT, Study


def find_run_dirs(roots: Sequence[str]) -> List[str]:
    """Work dirs with a status under ``roots``, outside ``_grid`` folders."""
    found = []
    for root in roots:
        if not osp.isdir(root):
            raise FileNotFoundError(f'work root {root} does not exist')
        for path, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d != '_grid')
            if STATUS_FILE in files:
                found.append(path)
                dirs[:] = []
    return found


def train_seconds_per_iter(run_dir: str) -> Optional[float]:
    """Mean training ``time`` per iteration in mmengine's scalars.json."""
    times = []
    for path in glob.glob(osp.join(run_dir, '*', 'vis_data', 'scalars.json')):
        with open(path) as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:  # a line cut short by a kill
                    continue
                if 'time' in rec and 'loss' in rec:
                    times.append(float(rec['time']))
    return sum(times) / len(times) if times else None


def format_duration(seconds: Optional[float]) -> Optional[str]:
    """``1:02:03`` / ``4:05``; None for None."""
    if seconds is None:
        return None
    h, rem = divmod(int(round(seconds)), 3600)
    m, s = divmod(rem, 60)
    return f'{h}:{m:02d}:{s:02d}' if h else f'{m}:{s:02d}'


def git_commit() -> Optional[str]:
    """The checkout's commit (``+dirty`` with uncommitted changes)."""
    try:
        head = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(['git', 'status', '--porcelain', '-uno'],
                               cwd=REPO_ROOT, capture_output=True,
                               text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return None if head.returncode else head.stdout.strip() + (
        '+dirty' if dirty.stdout.strip() else '')


def record_from_work_dir(study: Study, run_dir: str,
                         status: Optional[RunStatus] = None) -> RunRecord:
    """A work dir as a record of the cell its status names."""
    status = status or RunStatus.read(run_dir)
    if status is None:
        raise RecordError(f'{run_dir}: no {STATUS_FILE} (not a run of '
                          'tools/grid.py)')
    cell = Cell.from_dict(status.cell)
    val, test = (latest_metric_record(run_dir, s) for s in ('val', 'test'))
    ref = val or test or {}
    variants = getattr(study.losses.get(cell.loss), 'variants', ())
    options = next((v.options_dict for v in variants
                    if v.tag == cell.variant), {})
    return RunRecord(
        study=status.study or study.name,
        name=osp.basename(osp.normpath(run_dir)), cell=cell.to_dict(),
        options=options, iters=last_checkpoint_iter(run_dir),
        selection=SplitMetrics.from_metric_record('selection', val),
        report=SplitMetrics.from_metric_record('report', test),
        classes=ref.get('classes'), groups=ref.get('groups'),
        train_counts=ref.get('train_counts'), curve=metric_curve(run_dir),
        wall_s=status.wall_s or None,
        train_s_per_iter=train_seconds_per_iter(run_dir),
        cfg_options=list(status.cfg_options), finished=status.finished,
        state=status.state, work_dir=run_dir)


@dataclass
class Results:
    """A study's runs: finished ones by cell, everything else listed."""
    study: Study
    finished: Dict[Cell, RunRecord] = field(default_factory=dict)
    others: List[RunRecord] = field(default_factory=list)
    problems: List[str] = field(default_factory=list)

    def selections(self):
        return select_variants(self.study, self.finished)


def gather(study: Study, roots: Sequence[str] = (),
           use_records: bool = True) -> Results:
    """The study's records and work dirs under ``roots``: a bad record
    raises, a bad work dir or another study's goes to ``problems``."""
    res = Results(study)
    for rec in load_run_records(study.results_dir if use_records else None):
        if rec.study != study.name:
            raise RecordError(
                f'{RunRecord.path_in(study.results_dir, rec.name)}: a '
                f'record of the study {rec.study!r}, not {study.name!r}')
        res.finished[Cell.from_dict(rec.cell)] = rec
    for run_dir in find_run_dirs(roots):
        try:
            rec = record_from_work_dir(study, run_dir)
        except RecordError as e:
            res.problems.append(str(e))
            continue
        cell = Cell.from_dict(rec.cell)
        if cell in res.finished:
            continue  # the committed record of the same run
        if rec.study != study.name:
            res.problems.append(f'{run_dir}: a run of the study '
                                f'{rec.study!r}, not {study.name!r}')
        elif rec.state == 'done' and rec.selection is not None:
            res.finished[cell] = rec
        else:
            res.others.append(rec)
    return res
