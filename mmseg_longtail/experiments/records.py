"""Every on-disk file of the experiment layer, read and written here only.

A run leaves three kinds of files, each with one owner in this module:

* ``<work_dir>/grid_status.json``: :class:`RunStatus`, what the launcher
  knows of a run (its cell, state, command, attempts, wall time);
* ``<work_dir>/longtail_metrics/*.json``: the metric records that
  :class:`~mmseg_longtail.evaluation.LongTailIoUMetric` writes through
  :func:`write_metric_record` (one file per evaluation, plus the pointers
  ``latest.json`` and ``latest_<stage>.json``);
* ``<results_dir>/runs/<run>.json``: :class:`RunRecord`, the small record of a
  finished run that is committed to the repository, from which tables and
  pages are regenerated on any machine without work dirs.

Writes are atomic (a temporary file renamed over the target), so a reader
never sees half a file; a record that cannot be read raises
:class:`RecordError` naming the file.
"""
import dataclasses
import glob
import json
import os
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

STATUS_FILE = 'grid_status.json'
METRICS_DIR = 'longtail_metrics'
RECORD_KIND = 'mmseg_longtail.run_record'
RECORD_VERSION = 1
# metric records: 1 (no ``version`` field) up to the per-image, calibration
# and bootstrap sections; 2 may hold them (see write_metric_record). Both
# are read alike: the added parts are optional.
METRIC_RECORD_VERSION = 2
# mmengine's ``last_checkpoint`` names the newest ``iter_<N>.pth``
_CKPT_ITER = re.compile(r'iter_(\d+)\.pth')


class RecordError(ValueError):
    """A file of the experiment layer is missing fields, truncated or not
    ours; the message names the file."""


# ------------------------------------------------------------------- files
def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same
    folder and a rename, so concurrent readers see the old or the new file,
    never a partial one."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = osp.join(folder, f'.{osp.basename(path)}.{os.getpid()}.tmp')
    with open(tmp, 'w') as f:
        f.write(text)
    os.replace(tmp, path)


def atomic_write_json(path: str, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2) + '\n')


def write_if_changed(path: str, text: str) -> bool:
    """Write atomically unless the file already holds ``text`` (array tasks
    of a running job may be reading it); True when written."""
    if osp.isfile(path):
        with open(path) as f:
            if f.read() == text:
                return False
    atomic_write_text(path, text)
    return True


def read_json(path: str, what: str) -> Any:
    """The JSON in ``path``; :class:`RecordError` naming the file (and
    ``what`` it should be) when it is unreadable."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise RecordError(f'{path}: no such {what}') from None
    except (OSError, ValueError) as e:
        raise RecordError(f'{path}: unreadable {what} ({e}); delete or '
                          'restore the file') from None


def last_checkpoint_iter(work_dir: str) -> Optional[int]:
    """Iteration of the checkpoint mmengine's ``last_checkpoint`` names."""
    path = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(path):
        return None
    with open(path) as f:
        m = _CKPT_ITER.search(f.read())
    return int(m.group(1)) if m else None


def last_checkpoint(work_dir: str) -> Optional[str]:
    """Path of the newest checkpoint of a run (``last_checkpoint``)."""
    it = last_checkpoint_iter(work_dir)
    return None if it is None else osp.join(work_dir, f'iter_{it}.pth')


STOP_REASON_FILE = 'nonfinite.json'


def write_stop_reason(work_dir: str, reason: str) -> str:
    """``<work_dir>/nonfinite.json``: why a run stopped itself (written by
    ``NonFiniteGuardHook``), for the launcher's failed status."""
    path = osp.join(work_dir, STOP_REASON_FILE)
    atomic_write_json(path, dict(reason=reason))
    return path


def pop_stop_reason(work_dir: str) -> Optional[str]:
    """The reason a run stopped itself, removing the file (a later attempt
    starts clean); None when it did not."""
    path = osp.join(work_dir, STOP_REASON_FILE)
    if not osp.isfile(path):
        return None
    try:
        reason = str(read_json(path, 'stop reason').get('reason'))
    except (RecordError, AttributeError):
        reason = f'stopped itself (unreadable {path})'
    os.remove(path)
    return reason


# -------------------------------------------------------------- run status
@dataclass
class RunStatus:
    """``<work_dir>/grid_status.json``: the launcher's view of one run.

    ``state`` is ``running`` while training, ``testing`` during the
    report-split evaluation, then ``done`` or ``failed`` (``reason`` says
    why), or ``preempted`` (stopped with a checkpoint by PreemptionHook;
    the next attempt resumes from it).
    """
    cell: Dict[str, Any]
    config: str = ''
    work_dir: str = ''
    study: str = ''
    state: str = 'new'
    reason: str = ''
    launcher: str = 'local'
    gpus: int = 1
    cfg_options: List[str] = field(default_factory=list)
    command: str = ''
    host: str = ''
    slurm_job: Optional[str] = None
    started: Optional[str] = None
    finished: Optional[str] = None
    attempts: int = 0
    returncode: Optional[int] = None
    wall_s: float = 0.0
    last_iter: Optional[int] = None
    loadavg_start: Optional[List[float]] = None
    loadavg_end: Optional[List[float]] = None

    @classmethod
    def path(cls, work_dir: str) -> str:
        return osp.join(work_dir, STATUS_FILE)

    @classmethod
    def read(cls, work_dir: str) -> Optional['RunStatus']:
        """The status of a run, None when it has none; a corrupt file raises
        :class:`RecordError` naming it."""
        path = cls.path(work_dir)
        if not osp.isfile(path):
            return None
        raw = read_json(path, 'run status')
        if not isinstance(raw, dict) or not isinstance(raw.get('cell'),
                                                       dict):
            raise RecordError(f'{path}: not a run status (no `cell`)')
        raw = dict(raw)
        if 'status' in raw and 'state' not in raw:  # written before 0.2
            raw['state'] = raw.pop('status')
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})

    def write(self) -> 'RunStatus':
        atomic_write_json(self.path(self.work_dir), dataclasses.asdict(self))
        return self

    def update(self, **fields) -> 'RunStatus':
        for k, v in fields.items():
            if not hasattr(self, k):
                raise AttributeError(f'RunStatus has no field {k!r}')
            setattr(self, k, v)
        return self.write()


# ---------------------------------------------------------- metric records
def write_metric_record(json_dir: str, name: str, record: dict) -> str:
    """Write one evaluation's record as ``<json_dir>/<name>.json`` and point
    ``latest.json`` and ``latest_<stage>.json`` at it (copies: readers need
    no symlinks); returns the record's path.

    A record holds ``summary`` (required by the readers), ``per_class``,
    ``areas`` and the run's context. Version 2 (``version`` field; absent in
    version 1) adds optional parts, present only when the metric computed
    them: summary keys ``mPrecision``, ``mRecall``, ``mIoU_img``,
    ``mIoU_img_worst``, ``ECE``, ``SCE``, ``mIoU[_tail]_ci_low/high``;
    ``per_class`` ``Precision`` / ``Recall``; sections ``per_image``
    (``worst_q``, per-image ``mIoU``), ``calibration`` (``bins``, ``ECE``,
    ``SCE``, ``reliability``) and ``bootstrap`` (``samples``, ``level``,
    ``seed``, ``mIoU`` and ``mIoU_tail`` intervals).
    """
    text = json.dumps(record, indent=2) + '\n'
    path = osp.join(json_dir, f'{name}.json')
    stage = record.get('stage') or 'eval'
    for target in (path, osp.join(json_dir, 'latest.json'),
                   osp.join(json_dir, f'latest_{stage}.json')):
        atomic_write_text(target, text)
    return path


def read_metric_record(path: str) -> dict:
    rec = read_json(path, 'metric record')
    if not isinstance(rec, dict) or not isinstance(rec.get('summary'), dict):
        raise RecordError(f'{path}: not a LongTailIoUMetric record (no '
                          '`summary`)')
    return rec


def latest_metric_record(work_dir: str, stage: str) -> Optional[dict]:
    """The newest metric record of ``stage`` (``val`` or ``test``) of a run,
    None when the run has none. Runs written before the per-stage pointers
    existed have only ``latest.json``; it is used when its stage matches."""
    folder = osp.join(work_dir, METRICS_DIR)
    for name in (f'latest_{stage}.json', 'latest.json'):
        path = osp.join(folder, name)
        if osp.isfile(path):
            rec = read_metric_record(path)
            if rec.get('stage', 'val') == stage:
                return rec
    return None


def metric_curve(work_dir: str,
                 keys: Tuple[str, ...] = ('mIoU', 'mIoU_tail')
                 ) -> List[Dict[str, float]]:
    """The validation curve of a run: ``[{'iter': N, 'mIoU': ..}, ..]`` from
    its ``val_iter<N>.json`` records, by iteration."""
    points = []
    for path in glob.glob(osp.join(work_dir, METRICS_DIR, 'val_iter*.json')):
        m = re.fullmatch(r'val_iter(\d+)\.json', osp.basename(path))
        if not m:
            continue
        summary = read_metric_record(path)['summary']
        point = {'iter': int(m.group(1))}
        point.update({k: summary[k] for k in keys
                      if summary.get(k) is not None})
        points.append(point)
    return sorted(points, key=lambda p: p['iter'])


# --------------------------------------------------------------- run record
@dataclass
class SplitMetrics:
    """Metrics of one run on one split: the summary (mIoU, aAcc, ... in %,
    DiceErr as a fraction) and the per-class IoU (%; None where undefined)."""
    split: str
    summary: Dict[str, float]
    per_class_iou: Optional[List[Optional[float]]] = None
    iter: Optional[int] = None

    @classmethod
    def from_metric_record(cls, split: str,
                           rec: Optional[dict]) -> Optional['SplitMetrics']:
        if rec is None:
            return None
        return cls(split=split,
                   summary={k: float(v) for k, v in rec['summary'].items()
                            if v is not None},
                   per_class_iou=(rec.get('per_class') or {}).get('IoU'),
                   iter=rec.get('iter'))


@dataclass
class RunRecord:
    """The committed record of one finished run (``<results>/runs/<name>.json``).

    ``selection`` holds the metrics on the study's selection split (the
    last validation during training), ``report`` those on its report split
    (one evaluation of the final checkpoint); the collector selects variants
    on the first and reports the second only.
    """
    study: str
    name: str
    cell: Dict[str, Any]
    options: Dict[str, Any]
    iters: Optional[int]
    selection: Optional[SplitMetrics]
    report: Optional[SplitMetrics]
    classes: Optional[List[str]] = None
    groups: Optional[Dict[str, List[int]]] = None
    train_counts: Optional[List[float]] = None
    curve: List[Dict[str, float]] = field(default_factory=list)
    wall_s: Optional[float] = None
    train_s_per_iter: Optional[float] = None
    loadavg: Optional[List[Optional[List[float]]]] = None
    cfg_options: List[str] = field(default_factory=list)
    commit: Optional[str] = None
    finished: Optional[str] = None
    state: str = 'done'
    work_dir: Optional[str] = None  # where it ran; not written to disk

    REQUIRED = ('study', 'name', 'cell', 'options', 'iters', 'selection',
                'report')

    @property
    def finished_ok(self) -> bool:
        return self.state == 'done' and self.selection is not None

    def to_json(self) -> dict:
        out = dataclasses.asdict(self)
        out.pop('work_dir')
        return dict(kind=RECORD_KIND, version=RECORD_VERSION, **out)

    @classmethod
    def from_json(cls, raw: Any, path: str) -> 'RunRecord':
        if not isinstance(raw, dict) or raw.get('kind') != RECORD_KIND:
            raise RecordError(f'{path}: not a run record of this project '
                              f'(expected kind {RECORD_KIND!r})')
        if raw.get('version') != RECORD_VERSION:
            raise RecordError(f'{path}: run record version '
                              f'{raw.get("version")!r}; this code reads '
                              f'version {RECORD_VERSION}')
        missing = [k for k in cls.REQUIRED if k not in raw]
        if missing:
            raise RecordError(f'{path}: run record lacks {missing}')
        names = {f.name for f in dataclasses.fields(cls)} - {'work_dir'}
        data = {k: v for k, v in raw.items() if k in names}
        try:
            for split in ('selection', 'report'):
                if data[split] is not None:
                    data[split] = SplitMetrics(**data[split])
            return cls(**data)
        except TypeError as e:
            raise RecordError(f'{path}: malformed run record ({e})') from None

    @staticmethod
    def path_in(results_dir: str, name: str) -> str:
        return osp.join(results_dir, 'runs', f'{name}.json')

    def save(self, results_dir: str) -> str:
        path = self.path_in(results_dir, self.name)
        atomic_write_json(path, self.to_json())
        return path

    @classmethod
    def load(cls, path: str) -> 'RunRecord':
        return cls.from_json(read_json(path, 'run record'), path)


def load_run_records(results_dir: Optional[str]) -> List[RunRecord]:
    """Every run record under ``<results_dir>/runs``; the first bad file
    raises :class:`RecordError` naming it (a record is never skipped
    silently)."""
    if not results_dir:
        return []
    paths = sorted(glob.glob(osp.join(results_dir, 'runs', '*.json')))
    return [RunRecord.load(p) for p in paths]
