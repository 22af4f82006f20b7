"""The files a training run writes itself, read and written here only.

* ``<work_dir>/longtail_metrics/*.json``: one record per evaluation of
  :class:`~mmseg_longtail.evaluation.LongTailIoUMetric`
  (:func:`write_metric_record`), plus the pointers ``latest.json`` and
  ``latest_<stage>.json``;
* ``<work_dir>/nonfinite.json``: why ``NonFiniteGuardHook`` stopped a run;
* mmengine's ``last_checkpoint`` pointer, read by the launchers.

The experiment layer (:mod:`mmseg_longtail.experiments.records`) reads these
files through this module; the runtime never imports that layer. Writes are
atomic (a temporary file renamed over the target), so a reader never sees
half a file; a file that cannot be read raises :class:`RecordError` naming
it.
"""
import json
import os
import os.path as osp
import re
from typing import Any, Callable, Optional

METRICS_DIR = 'longtail_metrics'
# metric records: 1 (no ``version`` field) up to the per-image, calibration
# and bootstrap sections; 2 may hold them (see write_metric_record). Both
# are read alike: the added parts are optional.
METRIC_RECORD_VERSION = 2
# mmengine's ``last_checkpoint`` names the newest ``iter_<N>.pth``
_CKPT_ITER = re.compile(r'iter_(\d+)\.pth')


class RecordError(ValueError):
    """A run's file is missing fields, truncated or not ours; the message
    names the file."""


# ------------------------------------------------------------------- files
def atomic_local_save(save: Callable[[str], None], path: str) -> None:
    """Call ``save(tmp_path)`` for a temporary file beside ``path``, flush
    it to disk and rename it to ``path``, so that readers (and a resumed
    run) see the old or the new file, never a partial one. ``save`` may
    write nothing (a checkpoint on ranks other than 0); then nothing is
    renamed."""
    tmp = f'{path}.tmp{os.getpid()}'
    try:
        save(tmp)
        if osp.exists(tmp):
            with open(tmp, 'rb') as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically (:func:`atomic_local_save`),
    creating its folder."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)

    def save(tmp: str) -> None:
        with open(tmp, 'w') as f:
            f.write(text)

    atomic_local_save(save, path)


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
