"""Per-class IoU against training frequency, for one or several runs.

Reads the JSON files that ``LongTailIoUMetric`` writes
(``<work_dir>/longtail_metrics/latest.json`` by default) and draws each
class's IoU, classes ordered by their share of the training pixels (drawn
on a log axis beside), one line per run, so losses can be compared class by
class at a glance.
Rare classes sit on the left; a flat line means the tail is not paying for
the head. Classes with no training pixels have no share (left off the log
axis) and classes absent from the evaluated labels no defined IoU; the class
labels say which.

Each run is a metric JSON, a ``longtail_metrics`` folder or a work dir.
``tools/analysis_tools/plot_class_iou.py`` is the command line of
:func:`plot_runs`; :func:`plot` draws records already in memory (the
results page uses it).
"""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np


def resolve_run(path: str) -> str:
    """Metric JSON of a run given as file, metrics folder or work dir."""
    if osp.isfile(path):
        return path
    for candidate in (osp.join(path, 'latest.json'),
                      osp.join(path, 'longtail_metrics', 'latest.json')):
        if osp.isfile(candidate):
            return candidate
    raise FileNotFoundError(
        f'{path!r}: no metric JSON (looked for the file itself, latest.json '
        'and longtail_metrics/latest.json)')


def run_name(json_path: str, record: Dict) -> str:
    """Legend label of a run: its work dir's name."""
    if record.get('work_dir'):
        return osp.basename(osp.normpath(record['work_dir']))
    folder = osp.dirname(osp.abspath(json_path))
    if osp.basename(folder) == 'longtail_metrics':
        folder = osp.dirname(folder)
    return osp.basename(folder)


def load_counts(stats: Optional[str], record: Dict, count_type: str,
                num_classes: int) -> np.ndarray:
    """Training counts from the ``stats`` JSON, or else from the metric
    JSON's ``train_counts`` (which must be of ``count_type``)."""
    from mmseg_longtail.utils import load_class_counts
    if stats is not None:
        return load_class_counts(stats, num_classes, count_type, '--stats')
    if record.get('train_counts') is None:
        raise ValueError('the metric JSON holds no training counts; pass '
                         '--stats data/<name>/class_stats.json')
    if record.get('count_type', 'pixel') != count_type:
        raise ValueError(f'the metric JSON holds {record["count_type"]} '
                         f'counts, not {count_type}; pass --stats')
    return load_class_counts(record['train_counts'], num_classes, count_type,
                             'train_counts')


def per_class_values(record: Dict, metric: str = 'IoU') -> np.ndarray:
    """The record's per-class ``metric``, NaN where it is undefined."""
    return np.array([np.nan if v is None else v
                     for v in record['per_class'][metric]], float)


def eval_pixels_absent(record: Dict, metric: str = 'IoU') -> np.ndarray:
    """Per class: no labelled pixel in the evaluated split (an undefined
    value, or a label area of 0 where the record keeps its areas)."""
    absent = np.isnan(per_class_values(record, metric))
    label = (record.get('areas') or {}).get('label')
    if label is not None:
        absent |= np.asarray(label, float) == 0
    return absent


def class_labels(classes: Sequence[str], counts: np.ndarray,
                 records: List[Dict], metric: str = 'IoU') -> List[str]:
    """Tick label of each class: its name, marked when the class has no
    training pixels or no evaluated pixels in any record."""
    no_eval = np.logical_and.reduce(
        [eval_pixels_absent(r, metric) for r in records])
    labels = []
    for name, count, absent in zip(classes, counts, no_eval):
        if count == 0 and absent:
            name = f'{name} (no pixels)'
        elif count == 0:
            name = f'{name} (no training pixels)'
        elif absent:
            name = f'{name} (no evaluated pixels)'
        labels.append(name)
    return labels


def draw(records: List[Dict], names: List[str], counts: np.ndarray,
         metric: str = 'IoU', title: Optional[str] = None,
         count_type: str = 'pixel'):
    """The figure :func:`plot` saves, returned for inspection.

    Classes run along x, rarest in training first, one tick label each
    (rotated; the figure widens with the class count). The first axes hold
    each run's ``metric`` (undefined values leave a gap), the second, a log
    y axis on the right, the class's share of the training counts. Classes
    without training pixels have no share: they are left off that axis
    (which a stand-in count would stretch by decades) and their label says
    so. Arguments as :func:`plot`.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    classes = records[0]['classes']
    counts = np.asarray(counts, float)
    order = np.argsort(counts, kind='stable')
    x = np.arange(len(order))
    fig = Figure(figsize=(max(8.0, 4.0 + 0.3 * len(classes)), 5.5),
                 layout='constrained')
    FigureCanvasAgg(fig)  # renders without pyplot's global state
    ax = fig.add_subplot()
    # more runs than colours: vary the marker and line style as well
    markers, styles = 'osD^v', ['-', '--', ':', '-.']
    for i, (record, name) in enumerate(zip(records, names)):
        summary = record.get('summary', {}).get(f'm{metric}')
        label = name if summary is None else f'{name} (m{metric} ' \
            f'{summary:.2f})'
        ax.plot(x, per_class_values(record, metric)[order],
                marker=markers[i % len(markers)], markersize=5,
                linestyle=styles[(i // 10) % len(styles)], label=label)
    labels = class_labels(classes, counts, records, metric)
    ax.set_xticks(x, [labels[c] for c in order], rotation=90, fontsize=8)
    ax.set_xlim(-0.5, len(x) - 0.5)
    ax.set_ylim(0, 100)
    ax.set_xlabel(f'class, rarest in the training {count_type}s first')
    ax.set_ylabel(f'{metric} (%)')
    ax.grid(True, axis='y', alpha=0.3)
    share_ax = ax.twinx()
    seen = counts[order] > 0
    share_ax.plot(x[seen], counts[order][seen] / counts.sum(), color='0.55',
                  marker='_', markersize=12, markeredgewidth=2,
                  linestyle='none', label=f'training share ({count_type}s)')
    share_ax.set_yscale('log')
    share_ax.set_ylabel(f'share of training {count_type}s (log, grey)')
    # the runs' lines in front of the shares of the twin axes
    ax.set_zorder(share_ax.get_zorder() + 1)
    ax.patch.set_visible(False)
    fig.legend(loc='outside right upper', fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def plot(records: List[Dict], names: List[str], counts: np.ndarray,
         metric: str, out: str, title: Optional[str] = None,
         count_type: str = 'pixel') -> str:
    """Draw one line per record (labelled by ``names``) into the PNG
    ``out`` (replaced if it exists); returns ``out``.

    Args:
        records: metric JSON contents with the same ``classes``.
        names: legend labels, one per record.
        counts: training counts per class (of ``count_type``).
        metric: per-class value to draw ('IoU', 'Acc' or 'Dice').
        out: PNG path (its folder is created).
        title: plot title.
        count_type: 'pixel' or 'image', named on the axes.
    """
    fig = draw(records, names, counts, metric, title, count_type)
    if osp.dirname(out):
        os.makedirs(osp.dirname(out), exist_ok=True)
    fig.savefig(out, dpi=150)
    return out


def plot_runs(runs: Sequence[str],
              out: str = 'class_iou.png',
              names: Optional[Sequence[str]] = None,
              stats: Optional[str] = None,
              count_type: str = 'pixel',
              metric: str = 'IoU',
              title: Optional[str] = None,
              overwrite: bool = False) -> str:
    """Plot the per-class ``metric`` of ``runs`` into the PNG ``out``.

    Args:
        runs: metric JSON files, ``longtail_metrics`` folders or work dirs.
        out: PNG path.
        names: legend labels, one per run (default: work dir names).
        stats: class statistics JSON (default: the counts stored in the
            first metric JSON).
        count_type: 'pixel' or 'image' counts.
        metric: per-class value to plot ('IoU', 'Acc' or 'Dice').
        title: plot title.
        overwrite: replace ``out`` if it exists (else refuse).

    Returns:
        ``out``.

    Raises:
        FileExistsError: ``out`` exists and ``overwrite`` is False.
    """
    paths = [resolve_run(r) for r in runs]
    records = []
    for path in paths:
        with open(path) as f:
            records.append(json.load(f))
    if names is not None and len(names) != len(paths):
        raise ValueError(f'--names has {len(names)} labels for '
                         f'{len(paths)} runs')
    names = list(names or [run_name(p, r) for p, r in zip(paths, records)])
    classes = records[0]['classes']
    for path, record in zip(paths, records):
        if record['classes'] != classes:
            raise ValueError(f'{path}: classes {record["classes"]} differ '
                             f'from {paths[0]}: {classes}')
        if metric not in record['per_class']:
            raise KeyError(f'{path}: no per-class {metric}')
    counts = load_counts(stats, records[0], count_type, len(classes))
    if osp.exists(out) and not overwrite:
        raise FileExistsError(f'{out}: the output exists; pass --overwrite '
                              '(overwrite=True) to replace it')
    out = plot(records, names, counts, metric, out, title, count_type)
    print(f'wrote {out}')
    return out
