"""Per-class pixel and image counts of a training split, as a JSON file.

Two sources:
  * a config: its ``train_dataloader.dataset`` is built and every label map is
    read as the model sees it (label maps, reduce_zero_label, ignore ids);
  * a folder of label PNGs with ``--num-classes`` and ``--ignore-index``.

The JSON (keys ``classes``, ``ignore_index``, ``num_images``,
``pixel_counts``, ``image_counts``, ``image_pixel_totals``,
``image_frequencies``, ``per_image_pixel_counts``, ``gini``) feeds the
losses' ``class_counts``, CeCo's prior, the long-tail metric's
head/body/tail groups, the class-weight generators and the class-aware
samplers. The printed table gives each class's pixels, pixel share, images
and image frequency (% of the images containing it), then the Gini
coefficients of the pixel and of the image counts over the classes.
``--weights`` prints class weights (``mfb``, ``enet``, ``inverse``,
``sqrt_inverse``) and ``--weights-dir`` writes each as a list any loss's
``class_weight`` reads; ``--stats FILE`` does that for an existing
statistics file. Command line of
:mod:`mmseg_longtail.analysis.class_stats`.

Examples::

    python tools/analysis_tools/class_stats.py \
        configs/quickstart/unet_tiny_synthetic_ce.py \
        --out work_dirs/synthetic_stats.json \
        --plot work_dirs/synthetic_stats.png
    python tools/analysis_tools/class_stats.py \
        --ann-dir data/camvid/ann_dir/train \
        --num-classes 11 --ignore-index 11 --out data/camvid/class_stats.json
    python tools/analysis_tools/class_stats.py \
        --stats data/camvid/class_stats.json \
        --weights mfb enet --weights-dir data/camvid/class_weights
"""
import argparse
import os
from typing import Dict, Optional, Sequence

from mmengine.config import DictAction

from mmseg_longtail.analysis.class_stats import (class_weights_from_file,
                                                 write_class_stats,
                                                 write_folder_class_stats)
from mmseg_longtail.utils.class_weights import GENERATORS


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Per-class pixel / image counts of a training split')
    parser.add_argument('config', nargs='?', help='config whose train split '
                        'is counted')
    parser.add_argument('--ann-dir', help='folder of label PNGs (instead of '
                        'a config)')
    parser.add_argument('--num-classes', type=int, help='with --ann-dir')
    parser.add_argument('--ignore-index', type=int, default=255,
                        help='label value not counted (default 255)')
    parser.add_argument('--classes', nargs='+', help='class names in id '
                        'order (with --ann-dir)')
    parser.add_argument('--suffix', default='.png', help='label file suffix '
                        '(with --ann-dir)')
    parser.add_argument('--split', default='train',
                        choices=['train', 'val', 'test'],
                        help='which dataloader of the config to count')
    parser.add_argument('--stats', help='an existing statistics JSON: only '
                        'print / write its --weights')
    parser.add_argument('--out', help='output JSON file (required unless '
                        '--stats)')
    parser.add_argument('--weights', nargs='+', choices=sorted(GENERATORS),
                        help='print these class weights')
    parser.add_argument('--weights-dir', help='write each of --weights as '
                        '<dir>/<name>.json (a class_weight file)')
    parser.add_argument('--plot', help='also draw the class-frequency '
                        'distribution into this PNG')
    parser.add_argument('--workers', type=int, default=min(4, os.cpu_count()
                                                           or 1))
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='key=value overrides of the config')
    args = parser.parse_args(argv)
    if args.stats is not None:
        if args.config or args.ann_dir or not args.weights:
            parser.error('--stats takes --weights (and --weights-dir), '
                         'no CONFIG or --ann-dir')
        return args
    if (args.config is None) == (args.ann_dir is None):
        parser.error('give either CONFIG or --ann-dir')
    if args.out is None:
        parser.error('--out is required')
    if args.weights_dir and not args.weights:
        parser.error('--weights-dir needs --weights')
    if args.ann_dir is not None and args.num_classes is None:
        parser.error('--ann-dir needs --num-classes')
    return args


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    args = parse_args(argv)
    if args.stats is not None:
        return class_weights_from_file(args.stats, args.weights,
                                       args.weights_dir)
    if args.ann_dir is not None:
        return write_folder_class_stats(
            args.ann_dir,
            args.out,
            args.num_classes,
            ignore_index=args.ignore_index,
            class_names=args.classes,
            suffix=args.suffix,
            workers=args.workers,
            plot=args.plot,
            weights=args.weights,
            weights_dir=args.weights_dir)
    return write_class_stats(
        args.config,
        args.out,
        split=args.split,
        workers=args.workers,
        plot=args.plot,
        cfg_options=args.cfg_options,
        weights=args.weights,
        weights_dir=args.weights_dir)


if __name__ == '__main__':
    main()
