"""Every on-disk file of the experiment layer: the launcher's
:class:`RunStatus` in a work dir, and the committed :class:`RunRecord` of a
finished run (tables and pages are regenerated from these). The files a
training run writes itself are read through
:mod:`mmseg_longtail.utils.run_files`, re-exported here. Writes are atomic;
a file that cannot be read raises :class:`RecordError` naming it.
"""
import dataclasses
import glob
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from mmseg_longtail.utils.run_files import (  # noqa: F401  (re-exported)
    METRICS_DIR, RecordError, atomic_write_json, atomic_write_text,
    last_checkpoint, last_checkpoint_iter, latest_metric_record,
    pop_stop_reason, read_json, read_metric_record, write_if_changed)

STATUS_FILE = 'grid_status.json'
RECORD_KIND = 'mmseg_longtail.run_record'
RECORD_VERSION = 1


def _known_fields(cls, raw: dict) -> dict:
    """The keys of ``raw`` that are fields of ``cls``; others (written by
    other versions) are ignored, so that their files still load."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in raw.items() if k in names}


@dataclass
class RunStatus:
    """``<work_dir>/grid_status.json``: the launcher's view of one run;
    ``state``: running, testing (on the report split), done, failed
    (``reason`` says why) or preempted (the next attempt resumes)."""
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
    def read(cls, work_dir: str) -> Optional['RunStatus']:
        """The status of a run, None when it has none."""
        path = osp.join(work_dir, STATUS_FILE)
        if not osp.isfile(path):
            return None
        raw = read_json(path, 'run status')
        if not isinstance(raw, dict) or not isinstance(raw.get('cell'),
                                                       dict):
            raise RecordError(f'{path}: not a run status (no `cell`)')
        return cls(**_known_fields(cls, raw))

    def write(self) -> 'RunStatus':
        atomic_write_json(osp.join(self.work_dir, STATUS_FILE),
                          dataclasses.asdict(self))
        return self

    def update(self, **fields) -> 'RunStatus':
        for k, v in fields.items():
            if not hasattr(self, k):
                raise AttributeError(f'RunStatus has no field {k!r}')
            setattr(self, k, v)
        return self.write()


def metric_curve(work_dir: str) -> List[Dict[str, float]]:
    """A run's validation curve from its ``val_iter<N>.json`` records:
    ``[{'iter': N, 'mIoU': .., 'mIoU_tail': ..}, ..]`` by iteration."""
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
    """Metrics of one run on one split: the summary (in %, DiceErr as a
    fraction), the per-class IoU (None where undefined) and, where the
    metric computed them, each image's mIoU and the bootstrap's settings
    and intervals."""
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
        return cls(split=split,
                   summary={k: float(v) for k, v in rec['summary'].items()
                            if v is not None},
                   per_class_iou=(rec.get('per_class') or {}).get('IoU'),
                   iter=rec.get('iter'),
                   per_image_miou=(rec.get('per_image') or {}).get('mIoU'),
                   bootstrap=rec.get('bootstrap'))


@dataclass
class RunRecord:
    """The committed record of one finished run: its metrics on the
    selection split (last validation; variants are selected on them) and
    on the report split (test of the final checkpoint; only they are
    reported)."""
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
        out = dataclasses.asdict(self)
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
                              f'{raw.get("version")!r}; this code reads '
                              f'version {RECORD_VERSION}')
        missing = [k for k in ('study', 'name', 'cell', 'options', 'iters',
                               'selection', 'report') if k not in raw]
        if missing:
            raise RecordError(f'{path}: run record lacks {missing}')
        data = _known_fields(cls, raw)
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


def load_run_records(results_dir: Optional[str]) -> List[RunRecord]:
    """Every run record under ``<results_dir>/runs``; a bad file raises
    (a record is never skipped silently)."""
    if not results_dir:
        return []
    paths = sorted(glob.glob(osp.join(results_dir, 'runs', '*.json')))
    return [RunRecord.load(p) for p in paths]
