"""Convert Oxford-IIIT Pet (images + trimaps) to the mmseg layout.

Command line of :func:`mmseg_longtail.datasets.converters.convert_oxford_pet`
(input and output layout described there): a seeded 80/10/10 split, the
PAT paper's protocol.

Example::

    python tools/dataset_converters/oxford_pet.py /path/to/oxford-iiit-pet \
        --out-dir data/oxford_pet --seed 0
"""
import argparse
from typing import Dict, List, Optional

from mmseg_longtail.datasets.converters import convert_oxford_pet


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Oxford-IIIT Pet trimaps -> mmseg layout (3 classes)')
    parser.add_argument('src', help='folder holding images/ and '
                        'annotations/trimaps/')
    parser.add_argument('--out-dir', default='data/oxford_pet')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--ratios', type=float, nargs=3,
                        default=(0.8, 0.1, 0.1),
                        metavar=('TRAIN', 'VAL', 'TEST'))
    parser.add_argument('--nproc', type=int, default=1)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> Dict[str, List[str]]:
    args = parse_args(argv)
    return convert_oxford_pet(args.src, args.out_dir, args.seed, args.ratios,
                              args.nproc)


if __name__ == '__main__':
    main()
