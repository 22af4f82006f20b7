"""Runs of a study: committed run records, and work dirs read into records.

A run is identified by what it says of itself: its committed record, or the
``grid_status.json`` the launcher writes into its work dir, both carrying
the cell. A finished run is taken from its record when there is one;
unfinished and failed runs are kept apart (only the runs table lists them).
"""
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
    """Work dirs below ``roots`` with a launcher status, outside the
    launcher's ``_grid`` folder. A missing root is an error."""
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
    """Mean training ``time`` per iteration (data loading included) in
    mmengine's scalars.json files; a line cut short by a kill is
    skipped."""
    times = []
    for path in glob.glob(osp.join(run_dir, '*', 'vis_data', 'scalars.json')):
        with open(path) as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
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
    if head.returncode != 0:
        return None
    return head.stdout.strip() + ('+dirty' if dirty.stdout.strip() else '')


def record_from_work_dir(study: Study, run_dir: str,
                         status: Optional[RunStatus] = None) -> RunRecord:
    """A work dir as a run record of the cell its status names (``state``
    says whether it finished): selection metrics from the last validation,
    report metrics from the test of the final checkpoint."""
    status = status or RunStatus.read(run_dir)
    if status is None:
        raise RecordError(f'{run_dir}: no {STATUS_FILE} (not a run of '
                          'tools/grid.py)')
    cell = Cell.from_dict(status.cell)
    val = latest_metric_record(run_dir, 'val')
    test = latest_metric_record(run_dir, 'test')
    ref = val or test or {}
    loss = study.losses.get(cell.loss)
    options = (loss.variant(cell.variant).options_dict if loss and any(
        v.tag == cell.variant for v in loss.variants) else {})
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
    """The study's committed records plus the runs in work dirs under
    ``roots``. A bad record raises; a work dir that cannot be read, or
    of another study, is listed in ``problems`` and left out."""
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
