"""Write the grid configs ``configs/grid/<loss>/*.py`` from grid_spec.py.

    python tools/misc/generate_grid_configs.py           # (re)write all 160
    python tools/misc/generate_grid_configs.py --check   # exit 1 if stale

Each config is a few lines of ``_base_`` composition (data set, model, loss,
runtime, 30k schedule). Files in configs/grid/<loss>/ that the spec no longer
names are removed (only files this generator wrote).
"""
import argparse
import glob
import os
import os.path as osp
import sys
from typing import Dict

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import grid_spec  # noqa: E402

MARKER = 'tools/misc/generate_grid_configs.py writes these files'


def expected_files() -> Dict[str, str]:
    """{path: text} of every grid config."""
    files = {}
    for cell in grid_spec.all_cells():
        files[grid_spec.config_path(cell)] = grid_spec.render_config(
            cell, grid_spec.DATASETS[cell.dataset].base, '../../_base_/')
    return files


def stale_files(expected: Dict[str, str]):
    for path in glob.glob(osp.join(grid_spec.GRID_DIR, '*', '*.py')):
        if path not in expected:
            with open(path) as f:
                if MARKER in f.read():
                    yield path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--check', action='store_true',
                        help='only report configs that are missing, differ '
                        'or are stale; exit 1 if any')
    args = parser.parse_args()
    expected = expected_files()
    problems, written = [], 0
    for path, text in expected.items():
        old = open(path).read() if osp.exists(path) else None
        if old == text:
            continue
        if args.check:
            problems.append(f'{"differs" if old else "missing"}: {path}')
            continue
        os.makedirs(osp.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write(text)
        written += 1
    for path in stale_files(expected):
        if args.check:
            problems.append(f'stale: {path}')
        else:
            os.remove(path)
            print(f'removed {osp.relpath(path, grid_spec.REPO_ROOT)}')
    if args.check:
        for p in problems:
            print(p)
        print(f'{len(expected)} grid configs, {len(problems)} out of date')
        return 1 if problems else 0
    print(f'{len(expected)} grid configs in '
          f'{osp.relpath(grid_spec.GRID_DIR, grid_spec.REPO_ROOT)}/, '
          f'{written} written')
    return 0


if __name__ == '__main__':
    sys.exit(main())
