"""Tables and pages of a study from its run records and work dirs.

    python tools/collect_results.py [WORK_ROOT ...] [--study SPEC]
        [--out-dir DIR] [--formats md csv tex]
        [--tables table3 table4 table6 groups selection runs]
    python tools/collect_results.py --study SPEC --page [OUT.md]

Reads the committed run records of the study (default: the paper grid) and
the work dirs under WORK_ROOT (default: the spec's work_root). For each
(data set, model, loss) the variant with the best mean selection metric on
the selection split is chosen (``--select-metric``, default the spec's) and
reported with its report-split numbers, mean ± std over seeds. Unfinished
runs are blank in the tables and listed in ``runs`` (docs/grid.md).
"""
import argparse
import sys
from typing import Optional, Sequence

from mmseg_longtail.experiments import commands
from mmseg_longtail.experiments.spec import (PAPER_GRID, SELECT_METRICS,
                                             StudySource)
from mmseg_longtail.experiments.tables import TABLES


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Collect a study's results into tables or its page",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__)
    p.add_argument('roots', nargs='*', default=[],
                   help="work roots to read besides the records (default: "
                   "the spec's work_root)")
    p.add_argument('--study', metavar='SPEC',
                   help=f'a study spec (default: {PAPER_GRID})')
    p.add_argument('--full-res', action='store_true',
                   help="the spec's `full_res` variant")
    p.add_argument('--results-dir', help="run records' folder (default: "
                   "the spec's results_dir)")
    p.add_argument('--no-records', action='store_true',
                   help='read only the work dirs, not the committed records')
    p.add_argument('--select-metric', choices=SELECT_METRICS,
                   help="selection metric (default: the spec's, mIoU)")
    p.add_argument('--page', nargs='?', const='', metavar='OUT.md',
                   help="write the study's page (default: the spec's page) "
                   'and its plots instead of the tables')
    p.add_argument('--tables', nargs='+', default=list(TABLES),
                   choices=TABLES)
    p.add_argument('--out-dir', help='write one file per table and format')
    p.add_argument('--formats', nargs='+', default=['md', 'csv', 'tex'],
                   choices=['md', 'csv', 'tex'])
    p.add_argument('--print-format', default='md',
                   choices=['md', 'csv', 'tex', 'none'])
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    a = parse_args(argv)
    return commands.collect(
        StudySource(a.study, a.full_res, results_dir=a.results_dir),
        a.roots, a.page, a.tables, a.select_metric, a.out_dir, a.formats,
        a.print_format, a.no_records)


if __name__ == '__main__':
    sys.exit(main())
