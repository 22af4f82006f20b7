"""Per-class IoU against training frequency, for one or several runs.

Reads the JSON files that ``LongTailIoUMetric`` writes
(``<work_dir>/longtail_metrics/latest.json`` by default) and draws each
class's IoU (y) against its share of the training pixels (x, log scale),
one line per run, so losses can be compared class by class at a glance.
Rare classes sit on the left; a flat line means the tail is not paying for
the head. Classes with no training pixels are drawn at a count of 1; classes
with an undefined IoU (absent from labels and predictions) are left out.

Each run is a metric JSON, a ``longtail_metrics`` folder or a work dir.
``tools/analysis_tools/plot_class_iou.py`` is the command line of
:func:`plot_runs`; :func:`plot` draws records already in memory (the
results page uses it).
"""
import json
import math
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

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


def class_points(record: Dict, counts: np.ndarray, metric: str = 'IoU'
                 ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(class ids, training share, value) of one run, rarest class first;
    classes with an undefined value are left out, zero counts count as 1."""
    from mmseg_longtail.utils import class_prior
    share = class_prior(counts)
    values = np.array([np.nan if v is None else v
                       for v in record['per_class'][metric]], float)
    order = np.argsort(share, kind='stable')
    keep = order[~np.isnan(values[order])]
    return keep, share[keep], values[keep]


def plot(records: List[Dict], names: List[str], counts: np.ndarray,
         metric: str, out: str, title: Optional[str] = None,
         count_type: str = 'pixel') -> str:
    """Draw one line per record (labelled by ``names``) into the PNG
    ``out``; returns ``out``.

    Args:
        records: metric JSON contents with the same ``classes``.
        names: legend labels, one per record.
        counts: training counts per class (of ``count_type``).
        metric: per-class value to draw ('IoU', 'Acc' or 'Dice').
        out: PNG path (its folder is created).
        title: plot title.
        count_type: 'pixel' or 'image', named on the x axis.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from mmseg_longtail.utils import class_prior
    classes = records[0]['classes']
    share = class_prior(counts)
    fig, ax = plt.subplots(figsize=(max(8.0, 0.5 * len(classes) + 3), 4.8))
    # more runs than colours: vary the marker and line style as well
    markers, styles = 'osD^v', ['-', '--', ':', '-.']
    for i, (record, name) in enumerate(zip(records, names)):
        _, x, y = class_points(record, counts, metric)
        summary = record.get('summary', {}).get(f'm{metric}')
        label = name if summary is None else f'{name} (m{metric} ' \
            f'{summary:.2f})'
        ax.plot(x, y, marker=markers[i % len(markers)], markersize=5,
                linestyle=styles[(i // 10) % len(styles)], label=label)
    # class names along the bottom; names of classes with nearly the same
    # share are pushed apart sideways so they stay readable
    last, shift = None, 0
    for c in sorted(range(len(classes)), key=lambda k: share[k]):
        pos = math.log10(share[c])
        shift = shift + 1 if last is not None and pos - last < 0.03 else 0
        last = pos
        ax.annotate(classes[c], (share[c], 0), xytext=(9 * shift, 4),
                    textcoords='offset points', rotation=90, fontsize=7,
                    ha='center', va='bottom', color='0.35')
    ax.set_xscale('log')
    ax.set_ylim(0, 100)
    ax.set_xlabel(f'share of training {count_type}s (log)')
    ax.set_ylabel(f'{metric} (%)')
    ax.grid(True, which='both', alpha=0.3)
    ax.legend(fontsize=8, loc='upper left', bbox_to_anchor=(1.01, 1.0),
              borderaxespad=0)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    if osp.dirname(out):
        os.makedirs(osp.dirname(out), exist_ok=True)
    fig.savefig(out, dpi=150)
    plt.close(fig)
    return out


def plot_runs(runs: Sequence[str],
              out: str = 'class_iou.png',
              names: Optional[Sequence[str]] = None,
              stats: Optional[str] = None,
              count_type: str = 'pixel',
              metric: str = 'IoU',
              title: Optional[str] = None) -> str:
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

    Returns:
        ``out``.
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
    out = plot(records, names, counts, metric, out, title, count_type)
    print(f'wrote {out}')
    return out

