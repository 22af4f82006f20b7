"""Training-step time and size of the models of the comparison.

Command line of :func:`mmseg_longtail.analysis.benchmark_models.
benchmark_models` (what is timed is described there); prints a Markdown
table.

Example::

    python tools/analysis_tools/benchmark_models.py --shape 2 3 256 512
"""
import argparse
import os.path as osp
from typing import Dict, List, Optional

from mmseg_longtail.analysis.benchmark_models import (DEFAULT_MODELS,
                                                      benchmark_models)

# the repository's model bases, beside this tool
CONFIG_DIR = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs',
    '_base_', 'models')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--models', nargs='+', default=DEFAULT_MODELS,
                        help='base config names in --config-dir')
    parser.add_argument('--config-dir', default=CONFIG_DIR)
    parser.add_argument('--shape', nargs=4, type=int,
                        default=[2, 3, 256, 512], metavar=('N', 'C', 'H', 'W'))
    parser.add_argument('--num-classes', type=int, default=19)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--threads', type=int, default=None,
                        help='torch threads (default: torch default)')
    parser.add_argument('--no-infer', dest='infer', action='store_false',
                        help='time the training step only')
    parser.add_argument('--device', default='cpu')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> List[Dict]:
    args = parse_args(argv)
    # every option is named as the function's argument
    return benchmark_models(**vars(args))


if __name__ == '__main__':
    main()
