"""Runs of a study: committed run records, and work dirs read into records.

:func:`gather` merges the records of a study's results folder with the work
dirs found under some roots: a finished run is taken from its committed
record when there is one, else from its work dir; unfinished, failed and
unknown runs are kept apart (the runs table lists them; result tables never
use them).
"""
import datetime
import glob
import json
import os
import os.path as osp
import re
import subprocess
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from .cells import Cell, config_stem, run_name, stem
from .records import (METRICS_DIR, STATUS_FILE, RecordError, RunRecord,
                      RunStatus, SplitMetrics, last_checkpoint_iter,
                      latest_metric_record, load_run_records, metric_curve)
from .selection import select_variants
from .spec import REPO_ROOT, Study

SUMMARY_KEYS = ('mIoU', 'aAcc', 'mAcc', 'mDice', 'DiceErr', 'mIoU_head',
                'mIoU_body', 'mIoU_tail')
RUN_STAMP = re.compile(r'\d{8}_\d{6}')  # mmengine's per-launch log folder
LOG_TIME = re.compile(r'^(\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2})')


def find_run_dirs(roots: Sequence[str]) -> List[str]:
    """Directories holding one run each (a status, checkpoints, metrics or
    mmengine's ``<timestamp>/`` log folders) below ``roots``; the launcher's
    ``_grid`` folder and the runs' own subfolders are not entered. A root
    that does not exist is an error."""
    found = []
    for root in roots:
        if not osp.isdir(root):
            raise FileNotFoundError(f'work root {root} does not exist')
        for path, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d != '_grid')
            if (STATUS_FILE in files or 'last_checkpoint' in files
                    or METRICS_DIR in dirs
                    or any(RUN_STAMP.fullmatch(d) for d in dirs)):
                found.append(path)
                dirs[:] = []
    return found


def _scalar_records(run_dir: str):
    """Records of the run's mmengine ``scalars.json`` files (one per
    launch); lines that do not parse (a write cut short) are skipped."""
    for path in glob.glob(osp.join(run_dir, '*', 'vis_data', 'scalars.json')):
        with open(path) as f:
            for line in f:
                try:
                    yield path, json.loads(line)
                except ValueError:
                    continue


def train_seconds_per_iter(run_dir: str) -> Optional[float]:
    """Mean training ``time`` per iteration in mmengine's scalars.json
    (each record averages the logger interval; data loading included)."""
    times = [float(rec['time']) for _, rec in _scalar_records(run_dir)
             if 'time' in rec and 'loss' in rec and 'mIoU' not in rec]
    return sum(times) / len(times) if times else None


def _scalars_selection(run_dir: str) -> Optional[SplitMetrics]:
    """The last validation of mmengine's scalars.json files: the metrics of
    runs validated by mmseg's plain IoUMetric (no per-class values)."""
    best, best_key = None, None
    for path, rec in _scalar_records(run_dir):
        if 'mIoU' not in rec:
            continue
        key = (rec.get('step', 0), path)
        if best_key is None or key >= best_key:
            best, best_key = rec, key
    if best is None:
        return None
    summary = {k: float(best[k]) for k in SUMMARY_KEYS if k in best}
    if 'DiceErr' not in summary and 'mDice' in summary:
        summary['DiceErr'] = 1.0 - summary['mDice'] / 100
    return SplitMetrics('val', summary, None, best.get('step'))


def log_wall_time(run_dir: str) -> Optional[float]:
    """Seconds spanned by the run's mmengine logs (resumed runs: summed)."""
    total = None
    fmt = '%Y/%m/%d %H:%M:%S'
    for path in glob.glob(osp.join(run_dir, '*', '*.log')):
        first = last = None
        with open(path, errors='replace') as f:
            for line in f:
                m = LOG_TIME.match(line)
                if m:
                    last = m.group(1)
                    first = first or last
        if first:
            span = (datetime.datetime.strptime(last, fmt) -
                    datetime.datetime.strptime(first, fmt)).total_seconds()
            total = (total or 0.0) + span
    return total


def format_duration(seconds: Optional[float]) -> Optional[str]:
    """``1:02:03`` / ``4:05``; None for None."""
    if seconds is None:
        return None
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
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


def base_variant(study: Study, loss: str) -> Optional[str]:
    """The variant of ``loss`` that its base config already is (every
    option equal to the base's value), None if no variant is."""
    from mmengine.config import Config
    spec = study.losses[loss]
    base = Config.fromfile(spec.base).loss_decode
    for v in spec.variants:
        if all(k in base and base[k] == x for k, x in v.options):
            return v.tag
    return None


def _names(study: Study) -> Dict[str, Cell]:
    """Work-dir names of every setting and seed of the study; plain
    tools/train.py runs of a committed leaf config (the loss base's setting,
    no seed suffix) are the variant equal to that setting, seed 0."""
    names = {}
    # a run without a status validated on its config's val split: that is
    # the selection split only where the study does not carve one (else
    # val may be the report split, which must never steer a selection)
    datasets = [d for d, ds in study.datasets.items()
                if ds.selection == 'val']
    for d in datasets:
        for m in study.models:
            for lo, loss in study.losses.items():
                for v in loss.variants:
                    for seed in study.seeds_of(lo):
                        c = Cell(d, m, lo, v.tag, seed)
                        names[run_name(study, c)] = c
                        names.setdefault(config_stem(study, c), c)
    for lo, loss in study.losses.items():
        tag = base_variant(study, lo)
        if tag is None:
            continue
        for d in datasets:
            for m in study.models:
                names.setdefault(stem(study, d, m, loss.name),
                                 Cell(d, m, lo, tag, 0))
    return names


def identify(study: Study, run_dir: str, status: Optional[RunStatus],
             names: Optional[Dict[str, Cell]] = None) -> Optional[Cell]:
    """The cell of a run: its status, else its name among the study's
    (``names``: :func:`_names` of the study, when already computed)."""
    if status is not None:
        return Cell.from_dict(status.cell)
    if names is None:
        names = _names(study)
    return names.get(osp.basename(osp.normpath(run_dir)))


def record_from_work_dir(study: Study, run_dir: str,
                         status: Optional[RunStatus] = None,
                         cell: Optional[Cell] = None,
                         names: Optional[Dict[str, Cell]] = None
                         ) -> RunRecord:
    """What a work dir holds, as a run record (``state`` says whether it
    finished). The selection metrics come from the last validation (the
    LongTailIoUMetric record, else mmengine's scalars), the report metrics
    from the evaluation of the final checkpoint on the report split."""
    status = status if status is not None else RunStatus.read(run_dir)
    cell = cell or identify(study, run_dir, status, names)
    val = latest_metric_record(run_dir, 'val')
    test = latest_metric_record(run_dir, 'test')
    selection = (SplitMetrics.from_metric_record('selection', val)
                 or _scalars_selection(run_dir))
    ref = val or test or {}
    state = status.state if status else ('done' if selection else
                                         'incomplete')
    options = {}
    if cell is not None and cell.loss in study.losses:
        loss = study.losses[cell.loss]
        try:
            options = loss.variant(cell.variant).options_dict
        except KeyError:
            pass
    return RunRecord(
        study=(status.study if status and status.study else study.name),
        name=osp.basename(osp.normpath(run_dir)),
        cell=cell.to_dict() if cell else {}, options=options,
        iters=last_checkpoint_iter(run_dir), selection=selection,
        report=SplitMetrics.from_metric_record('report', test),
        classes=ref.get('classes'), groups=ref.get('groups'),
        train_counts=ref.get('train_counts'), curve=metric_curve(run_dir),
        wall_s=(status.wall_s if status and status.wall_s else
                log_wall_time(run_dir)),
        train_s_per_iter=train_seconds_per_iter(run_dir),
        cfg_options=list(status.cfg_options) if status else [],
        finished=status.finished if status else None, state=state,
        work_dir=run_dir)


@dataclass
class Results:
    """A study's runs: finished ones by cell, everything else listed."""
    study: Study
    finished: Dict[Cell, RunRecord] = field(default_factory=dict)
    others: List[RunRecord] = field(default_factory=list)
    problems: List[str] = field(default_factory=list)

    @property
    def all_runs(self) -> List[RunRecord]:
        return list(self.finished.values()) + self.others

    def selections(self, metric: Optional[str] = None):
        return select_variants(self.study, self.finished, metric)


def gather(study: Study, roots: Sequence[str] = (),
           use_records: bool = True) -> Results:
    """The study's committed records plus the runs in work dirs under
    ``roots``. A bad record raises (naming its file); a work dir whose files
    cannot be read is listed in ``problems`` and kept out of the results."""
    res = Results(study)
    if use_records:
        for rec in load_run_records(study.results_dir):
            if rec.study != study.name:
                raise RecordError(
                    f'{RunRecord.path_in(study.results_dir, rec.name)}: a '
                    f'record of the study {rec.study!r}, not '
                    f'{study.name!r}')
            res.finished[Cell.from_dict(rec.cell)] = rec
    run_dirs = find_run_dirs(roots)
    # names of every planned cell, built once (runs without a status)
    names = _names(study) if run_dirs else None
    for run_dir in run_dirs:
        try:
            rec = record_from_work_dir(study, run_dir, names=names)
        except RecordError as e:
            res.problems.append(str(e))
            continue
        cell = Cell.from_dict(rec.cell) if rec.cell else None
        if cell is not None and cell in res.finished:
            continue  # the committed record of the same run
        if cell is not None and rec.finished_ok:
            res.finished[cell] = rec
        else:
            res.others.append(rec)
    return res
