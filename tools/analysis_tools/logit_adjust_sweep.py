"""Post-hoc logit adjustment: sweep tau over a checkpoint in one pass.

Predicts every image of the config's validation split once and scores
``argmax(z - tau log prior)`` for each tau (one confusion matrix each) with
the config's LongTailIoUMetric: prints mIoU and head / body / tail mIoU per
tau, saves the plot and JSON under --out-dir, and with --write-config writes
a config that inherits CONFIG and predicts with the best tau. The prior's
class counts are those the config names unless --class-counts is given.
Command line of
:func:`mmseg_longtail.analysis.logit_adjust_sweep.sweep_logit_adjustment`.

Example::

    python tools/analysis_tools/logit_adjust_sweep.py CONFIG CHECKPOINT \
        --taus 0 0.25 0.5 0.75 1 1.25 1.5 --out-dir work_dirs/la_sweep \
        --write-config work_dirs/la_sweep/best_tau.py
"""
import argparse
from typing import List, Optional

from mmengine.config import DictAction

from mmseg_longtail.analysis.logit_adjust_sweep import sweep_logit_adjustment


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='sweep the post-hoc logit-adjustment tau in one pass')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--taus', nargs='+', type=float,
                        default=[0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0],
                        help='values of tau (default 0 .. 2)')
    parser.add_argument('--class-counts', default=None,
                        help='statistics JSON of the training split '
                        '(default: the first the config names of model.'
                        'test_cfg.logit_adjust.class_counts, class_stats_file,'
                        " the val/test evaluator's or model.decode_head."
                        "loss_decode's class_stats_file / class_counts)")
    parser.add_argument('--count-type', default='pixel',
                        choices=['pixel', 'image'])
    parser.add_argument('--split', default='val', choices=['val', 'test'])
    parser.add_argument('--select', default='mIoU',
                        help='summary key that picks the best tau')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--out-dir', default=None,
                        help='folder for logit_adjust_sweep.{json,png}')
    parser.add_argument('--write-config', default=None,
                        help='write a config with the best tau here')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None):
    args = parse_args(argv)
    return sweep_logit_adjustment(
        args.config, args.checkpoint, args.taus,
        class_counts=args.class_counts, count_type=args.count_type,
        split=args.split, device=args.device, select=args.select,
        out_dir=args.out_dir, write_config=args.write_config,
        cfg_options=args.cfg_options)


if __name__ == '__main__':
    main()
