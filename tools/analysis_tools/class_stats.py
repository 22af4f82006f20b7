"""Per-class pixel and image counts of a training split, as a JSON file.

Two sources:
  * a config: its ``train_dataloader.dataset`` is built and every label map is
    read as the model sees it (label maps, reduce_zero_label, ignore ids);
  * a folder of label PNGs with ``--num-classes`` and ``--ignore-index``.

The JSON (keys ``classes``, ``ignore_index``, ``num_images``,
``pixel_counts``, ``image_counts``) feeds the losses' ``class_counts``, CeCo's
prior and the long-tail metric's head/body/tail groups.

Examples::

    python tools/analysis_tools/class_stats.py configs/quickstart/unet_tiny_synthetic_ce.py \
        --out work_dirs/synthetic_stats.json --plot work_dirs/synthetic_stats.png
    python tools/analysis_tools/class_stats.py --ann-dir data/camvid/ann_dir/train \
        --num-classes 11 --ignore-index 11 --out data/camvid/class_stats.json
"""
import argparse
import os
import os.path as osp
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np
from mmengine.config import DictAction


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
    parser.add_argument('--out', required=True, help='output JSON file')
    parser.add_argument('--plot', help='also draw the class-frequency '
                        'distribution into this PNG')
    parser.add_argument('--workers', type=int, default=min(4, os.cpu_count()
                                                           or 1))
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='key=value overrides of the config')
    args = parser.parse_args(argv)
    if (args.config is None) == (args.ann_dir is None):
        parser.error('give either CONFIG or --ann-dir')
    if args.ann_dir is not None and args.num_classes is None:
        parser.error('--ann-dir needs --num-classes')
    return args


def _unwrap(dataset):
    """The first real data set inside mmengine's dataset wrappers."""
    while True:
        if hasattr(dataset, 'datasets'):  # ConcatDataset
            dataset = dataset.datasets[0]
        elif hasattr(dataset, 'dataset'):  # RepeatDataset, ClassBalanced
            dataset = dataset.dataset
        else:
            return dataset


def _file_label_loader(dataset) -> Callable[[int], np.ndarray]:
    """Label maps of any mmseg data set, decoded by mmseg's LoadAnnotations
    (``reduce_zero_label`` and ``label_map`` applied, as in training)."""
    from mmseg.datasets.transforms import LoadAnnotations
    load_annotations = LoadAnnotations(
        backend_args=getattr(dataset, 'backend_args', None))

    def load(i: int) -> np.ndarray:
        info = dataset.get_data_info(i)
        results = dict(
            seg_map_path=info['seg_map_path'],
            reduce_zero_label=info.get('reduce_zero_label', False),
            label_map=info.get('label_map'),
            seg_fields=[])
        return load_annotations(results)['gt_seg_map']

    return load


def stats_from_config(config: str, split: str, workers: int,
                      cfg_options: Optional[Dict] = None) -> Dict:
    import mmseg_longtail  # noqa: F401
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS

    from mmseg_longtail.utils import compute_class_stats

    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    ds_cfg = cfg[f'{split}_dataloader']['dataset']
    dataset = _unwrap(DATASETS.build(ds_cfg))
    dataset.full_init()
    classes = list(dataset.metainfo['classes'])
    ignore_index = int(getattr(dataset, 'ignore_index', 255))
    if hasattr(dataset, 'get_gt_seg_map'):
        loader = dataset.get_gt_seg_map
    else:
        loader = _file_label_loader(dataset)
    return compute_class_stats(
        loader,
        num_classes=len(classes),
        ignore_index=ignore_index,
        class_names=classes,
        num_labels=len(dataset),
        workers=workers)


def plot_class_frequencies(stats: Dict, path: str,
                           thresholds: Tuple[float, float] = (1 / 3, 2 / 3)
                           ) -> None:
    """Sorted per-class pixel frequency (log scale), head/body/tail coloured."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from mmseg_longtail.utils import frequency_groups

    counts = np.asarray(stats['pixel_counts'], dtype=np.float64)
    freqs = counts / max(counts.sum(), 1)
    groups = frequency_groups(counts, thresholds)
    group_of = {c: g for g, cs in groups.items() for c in cs}
    colours = dict(head='tab:blue', body='tab:orange', tail='tab:red')
    order = np.argsort(-counts, kind='stable')
    names = [stats['classes'][c] for c in order]
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(order) + 2), 4.2))
    ax.bar(range(len(order)), np.maximum(freqs[order], 1e-12),
           color=[colours[group_of[c]] for c in order])
    ax.set_yscale('log')
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels(names, rotation=60, ha='right', fontsize=8)
    ax.set_ylabel('fraction of labelled pixels (log)')
    ratio = counts.max() / max(counts[counts > 0].min(), 1) if (
        counts > 0).any() else float('nan')
    ax.set_title(f'class frequency, {len(order)} classes, '
                 f'head/tail ratio {ratio:.0f}')
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[g]) for g in colours]
    ax.legend(handles, [f'{g} ({len(groups[g])})' for g in colours])
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    args = parse_args(argv)
    from mmseg_longtail.utils import (compute_class_stats, list_label_files,
                                      save_class_stats)
    if args.ann_dir is not None:
        files = list_label_files(args.ann_dir, args.suffix)
        if not files:
            raise SystemExit(f'no *{args.suffix} files under {args.ann_dir}')
        stats = compute_class_stats(
            files,
            num_classes=args.num_classes,
            ignore_index=args.ignore_index,
            class_names=args.classes,
            workers=args.workers)
    else:
        stats = stats_from_config(args.config, args.split, args.workers,
                                  args.cfg_options)
    save_class_stats(stats, args.out)
    counts = np.asarray(stats['pixel_counts'])
    total = max(counts.sum(), 1)
    width = max(len(n) for n in stats['classes'])
    print(f'{"id":>3} {"class":<{width}} {"pixels":>12} {"%":>7} {"images":>7}')
    for i, (name, px, im) in enumerate(
            zip(stats['classes'], stats['pixel_counts'],
                stats['image_counts'])):
        print(f'{i:>3} {name:<{width}} {px:>12} {100 * px / total:>7.3f} '
              f'{im:>7}')
    print(f'{stats["num_images"]} images; wrote {args.out}')
    if args.plot:
        plot_class_frequencies(stats, args.plot)
        print(f'wrote {args.plot}')
    return stats


if __name__ == '__main__':
    main()
