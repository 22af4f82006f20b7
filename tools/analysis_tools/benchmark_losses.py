"""Time and memory of the long-tail losses against mmseg's cross-entropy.

Command line of :func:`mmseg_longtail.analysis.benchmark_losses.
benchmark_losses` (what is measured, and how, is described there).

Example::

    python tools/analysis_tools/benchmark_losses.py --threads 2
    # CUDA: 2x19x512x1024 and 8x19x512x1024 unless --shape is given
    python tools/analysis_tools/benchmark_losses.py --device cuda --markdown
    python tools/analysis_tools/benchmark_losses.py --device cuda \
        --shape 8 19 512 1024 --shape 4 19 512 1024
"""
import argparse
from typing import List, Optional

from mmseg_longtail.analysis.benchmark_losses import benchmark_losses


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--shape', type=int, nargs=4, action='append',
                        default=None, metavar=('N', 'C', 'H', 'W'),
                        help='logits shape; repeat for several tables '
                        '(default: 2 19 512 1024 on CPU, and also 8 19 512 '
                        '1024 on CUDA)')
    parser.add_argument('--repeats', type=int, default=7)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads (default: torch default)')
    parser.add_argument('--ignore-frac', type=float, default=0.05,
                        help='fraction of pixels labelled 255')
    parser.add_argument('--imbalance', type=float, default=1000.0,
                        help='max/min of the synthetic class counts')
    parser.add_argument('--only', nargs='*', default=None,
                        help='substrings of variant labels to run')
    parser.add_argument('--no-memory', dest='memory', action='store_false',
                        help='skip the peak-memory measurement')
    parser.add_argument('--markdown', action='store_true',
                        help='print the table as Markdown')
    parser.add_argument('--summary', action='store_true',
                        help='end with one line naming the losses over '
                        'their targets')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> List[List[str]]:
    args = parse_args(argv)
    # every option is named as the function's argument
    return benchmark_losses(**vars(args))


if __name__ == '__main__':
    main()
