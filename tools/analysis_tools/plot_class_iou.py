"""Per-class IoU against training frequency, for one or several runs.

Command line of :func:`mmseg_longtail.analysis.plot_class_iou.plot_runs`:
one line per run, class IoU with the classes ordered by their share of the
training pixels (drawn on a log axis), from the JSON files that
``LongTailIoUMetric`` writes. An existing --out is kept unless --overwrite.

Example::

    python tools/analysis_tools/plot_class_iou.py \
        work_dirs/camvid_ce work_dirs/camvid_pat \
        --stats data/camvid/class_stats.json --out docs/results/camvid_iou.png

Each RUN is a metric JSON, a ``longtail_metrics`` folder or a work dir;
runs are labelled by ``--names`` or by their work dir's name.
"""
import argparse
from typing import List, Optional

from mmseg_longtail.analysis.plot_class_iou import plot_runs


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='plot per-class IoU against training frequency')
    parser.add_argument('runs', nargs='+',
                        help='metric JSON files, longtail_metrics folders or '
                        'work dirs')
    parser.add_argument('--names', nargs='+', default=None,
                        help='legend labels, one per run')
    parser.add_argument('--stats', default=None,
                        help='class statistics JSON (default: the counts '
                        'stored in the metric JSON)')
    parser.add_argument('--count-type', choices=('pixel', 'image'),
                        default='pixel')
    parser.add_argument('--metric', default='IoU',
                        choices=('IoU', 'Acc', 'Dice'),
                        help='per-class value to plot')
    parser.add_argument('--title', default=None)
    parser.add_argument('--out', default='class_iou.png')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace --out if it exists')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> str:
    args = parse_args(argv)
    # every option is named as the function's argument
    return plot_runs(**vars(args))


if __name__ == '__main__':
    main()
