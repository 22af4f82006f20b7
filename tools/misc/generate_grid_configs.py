"""Write the paper grid's leaf configs ``configs/grid/<loss>/*.py``.

    python tools/misc/generate_grid_configs.py           # (re)write them
    python tools/misc/generate_grid_configs.py --check   # exit 1 if stale

One config per data set x model x loss of the spec (default
configs/grid/paper_grid.py) with each loss's base setting; sweep variants
are rendered by tools/grid.py at run time. Files this generator wrote that
the spec no longer names are removed.
"""
import argparse
import sys

from mmseg_longtail.experiments import commands
from mmseg_longtail.experiments.spec import PAPER_GRID


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--study', metavar='SPEC',
                   help=f'a spec with config_dir (default: '
                   f'{PAPER_GRID})')
    p.add_argument('--check', action='store_true',
                   help='only report configs that are missing, differ or '
                   'are stale; exit 1 if any')
    a = p.parse_args()
    return commands.generate_configs(a.study, a.check)


if __name__ == '__main__':
    sys.exit(main())
