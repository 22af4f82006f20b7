"""Convert the NYU Depth v2 labelled set to the mmseg layout (40 / 13 classes).

Command line of :func:`mmseg_longtail.datasets.converters.convert_nyu_v2`;
the accepted map / split file formats and the output layout are described
there and in docs/datasets.md. None of the inputs can be downloaded here.

Example::

    python tools/dataset_converters/nyu_v2.py nyu_depth_v2_labeled.mat \
        --map40 classMapping40.mat --map13 class13Mapping.mat \
        --splits-file splits.mat --out-dir data/nyu_v2
"""
import argparse
from typing import Dict, List, Optional

from mmseg_longtail.datasets.converters import convert_nyu_v2


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='NYU Depth v2 labelled .mat -> mmseg layout')
    parser.add_argument('mat', help='nyu_depth_v2_labeled.mat (v7.3/HDF5)')
    parser.add_argument('--map40', required=True,
                        help='raw (894) -> 40-class map file')
    parser.add_argument('--map40-key', default=None)
    parser.add_argument('--map13', default=None,
                        help='40 -> 13-class map file (optional)')
    parser.add_argument('--map13-key', default=None)
    parser.add_argument('--split', choices=('standard', 'random'),
                        default='standard')
    parser.add_argument('--splits-file', default=None,
                        help='splits.mat (trainNdxs/testNdxs) or JSON, for '
                        '--split standard')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of --split random')
    parser.add_argument('--ratios', type=float, nargs=3,
                        default=(0.8, 0.1, 0.1),
                        metavar=('TRAIN', 'VAL', 'TEST'))
    parser.add_argument('--out-dir', default='data/nyu_v2')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> Dict[str, List[str]]:
    args = parse_args(argv)
    # every option is named as the function's argument
    return convert_nyu_v2(**vars(args))


if __name__ == '__main__':
    main()
