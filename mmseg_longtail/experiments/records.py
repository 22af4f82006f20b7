"""A work dir's :class:`RunStatus`, a finished run's :class:`RunRecord` and
(re-exported) the run files' readers; bad files raise :class:`RecordError`."""
import glob
import os.path as osp
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

from mmseg_longtail.utils.run_files import (  # noqa: F401  (re-exported)
    METRICS_DIR, RecordError, atomic_write_json, atomic_write_text,
    last_checkpoint, last_checkpoint_iter, latest_metric_record,
    pop_stop_reason, read_json, read_metric_record, write_if_changed)

STATUS_FILE = 'grid_status.json'
RECORD_KIND = 'mmseg_longtail.run_record'
RECORD_VERSION = 1


@dataclass
class RunStatus:
    """The launcher's ``grid_status.json``; ``state``: running, testing, done,
    failed (``reason`` says why) or preempted (the next attempt resumes)."""
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

    @classmethod
    def read(cls, work_dir: str,
             otherwise: Optional[str] = None) -> Optional['RunStatus']:
        """The status (None without one); a corrupt one raises or, with
        ``otherwise`` (what then happens), is warned about and read as None."""
        path = osp.join(work_dir, STATUS_FILE)
        if not osp.isfile(path):
            return None
        try:
            raw = read_json(path, 'run status')
            if not (isinstance(raw, dict)
                    and isinstance(raw.get('cell'), dict)):
                raise RecordError(f'{path}: not a run status (no `cell`)')
            return cls(**{k: v for k, v in raw.items()
                          if k in cls.__dataclass_fields__})
        except RecordError as e:
            if otherwise is None:
                raise
            print(f'warning: {e}; {otherwise}', flush=True)
            return None

    def update(self, **fields) -> 'RunStatus':
        """Set ``fields`` and write the status file."""
        for k, v in fields.items():
            if k not in self.__dataclass_fields__:
                raise AttributeError(f'RunStatus has no field {k!r}')
            setattr(self, k, v)
        atomic_write_json(osp.join(self.work_dir, STATUS_FILE), asdict(self))
        return self

    write = update


def metric_curve(work_dir: str) -> List[Dict[str, float]]:
    """``[{'iter': N, 'mIoU': .., 'mIoU_tail': ..}, ..]`` of a work dir."""
    points = []
    for path in glob.glob(osp.join(work_dir, METRICS_DIR, 'val_iter*.json')):
        m = re.fullmatch(r'val_iter(\d+)\.json', osp.basename(path))
        if m:
            summary = read_metric_record(path)['summary']
            points.append({'iter': int(m.group(1)), **{
                k: summary[k] for k in ('mIoU', 'mIoU_tail')
                if summary.get(k) is not None}})
    return sorted(points, key=lambda p: p['iter'])


@dataclass
class SplitMetrics:
    """One run's metrics on one split: summary (%, DiceErr a fraction),
    per-class IoU (None: undefined), per-image mIoU and bootstrap."""
    split: str
    summary: Dict[str, float]
    per_class_iou: Optional[List[Optional[float]]] = None
    iter: Optional[int] = None
    per_image_miou: Optional[List[Optional[float]]] = None
    bootstrap: Optional[Dict[str, Any]] = None

    @classmethod
    def from_metric_record(cls, split: str,
                           rec: Optional[dict]) -> Optional['SplitMetrics']:
        if rec is None:
            return None
        return cls(split, {k: float(v) for k, v in rec['summary'].items()
                           if v is not None},
                   (rec.get('per_class') or {}).get('IoU'), rec.get('iter'),
                   (rec.get('per_image') or {}).get('mIoU'),
                   rec.get('bootstrap'))


@dataclass
class RunRecord:
    """A finished run: metrics of its last validation (the selection split,
    for selection) and of its final test (the report split, reported)."""
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
    cfg_options: List[str] = field(default_factory=list)
    commit: Optional[str] = None
    finished: Optional[str] = None
    state: str = 'done'
    work_dir: Optional[str] = None  # where it ran; not written to disk

    def to_json(self) -> dict:
        out = asdict(self)
        out.pop('work_dir')
        return dict(kind=RECORD_KIND, version=RECORD_VERSION, **out)

    @classmethod
    def load(cls, path: str) -> 'RunRecord':
        raw = read_json(path, 'run record')
        if not isinstance(raw, dict) or raw.get('kind') != RECORD_KIND:
            raise RecordError(f'{path}: not a run record of this project '
                              f'(expected kind {RECORD_KIND!r})')
        if raw.get('version') != RECORD_VERSION:
            raise RecordError(f'{path}: run record version '
                              f'{raw.get("version")!r}, not {RECORD_VERSION}')
        missing = [k for k in ('study', 'name', 'cell', 'options', 'iters',
                               'selection', 'report') if k not in raw]
        if missing:
            raise RecordError(f'{path}: run record lacks {missing}')
        # keys that are no field (other versions') are ignored
        data = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        try:
            for s in ('selection', 'report'):
                if data[s] is not None:
                    data[s] = SplitMetrics(**data[s])
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


def load_run_records(results_dir: Optional[str]) -> List[RunRecord]:
    """Every run record under ``<results_dir>/runs`` (a bad one raises)."""
    if not results_dir:
        return []
    paths = sorted(glob.glob(osp.join(results_dir, 'runs', '*.json')))
    return [RunRecord.load(p) for p in paths]
