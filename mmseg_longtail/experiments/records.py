"""Every on-disk file of the experiment layer, read and written here only.

* ``<work_dir>/grid_status.json``: :class:`RunStatus`, what the launcher
  knows of a run (its cell, state, command, attempts, wall time);
* ``<results_dir>/runs/<run>.json``: :class:`RunRecord`, the small record of a
  finished run that is committed to the repository, from which tables and
  pages are regenerated on any machine without work dirs.

The files a training run writes itself (metric records, stop reason) belong
to the runtime (:mod:`mmseg_longtail.utils.run_files`); they are read
through it and re-exported here. Writes are atomic; a record that cannot be
read raises :class:`RecordError` naming the file.
"""
import dataclasses
import glob
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from mmseg_longtail.utils.run_files import (  # noqa: F401  (re-exported)
    METRICS_DIR, RecordError, atomic_write_json, atomic_write_text,
    last_checkpoint, last_checkpoint_iter, latest_metric_record,
    pop_stop_reason, read_json, read_metric_record, write_if_changed)

STATUS_FILE = 'grid_status.json'
RECORD_KIND = 'mmseg_longtail.run_record'
RECORD_VERSION = 1


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
    # where the metric computed them: each image's mIoU (%) and the
    # bootstrap's settings and intervals (samples, level, seed, mIoU and
    # mIoU_tail as [low, high] in %); the summary holds the bounds too
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
    """The committed record of one finished run
    (``<results>/runs/<name>.json``).

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
        # keys that are no field (ones that committed records written by
        # other versions carry) are ignored, so those records still load
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
