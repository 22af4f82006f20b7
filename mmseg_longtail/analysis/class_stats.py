"""Class statistics of a config's split or of a label folder, as JSON.

The counting itself and the JSON format live in
:mod:`mmseg_longtail.utils.class_stats`; this module finds the labels (a
config's data set, decoded as the model sees them, or a folder of PNGs),
writes the file, prints the per-class table (pixels, images, image
frequency) with the Gini coefficients and draws the frequency plot.
``tools/analysis_tools/class_stats.py`` is its command line.
"""
import json
import os
import os.path as osp
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from mmseg_longtail.utils import (class_gini, compute_class_stats,
                                  frequency_groups, image_frequencies,
                                  list_label_files, load_class_stats,
                                  save_class_stats)
from mmseg_longtail.utils.class_weights import (class_weights_from_stats,
                                                weight_table)


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


def stats_from_config(config: str,
                      split: str = 'train',
                      workers: int = 0,
                      cfg_options: Optional[Dict] = None) -> Dict:
    """Class statistics of the ``<split>_dataloader`` data set of a config.

    Labels are read through the data set's ``get_gt_seg_map`` when it has
    one, else through mmseg's ``LoadAnnotations``; class names and
    ``ignore_index`` come from the data set.

    Args:
        config: config file path.
        split: 'train', 'val' or 'test'.
        workers: label-reading processes (0 or 1: this process).
        cfg_options: overrides merged into the config first.
    """
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS

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

    def describe(i: int) -> str:
        # errors (bad values, corrupt files) name the label file
        return str(dataset.get_data_info(i).get('seg_map_path', f'label {i}'))

    return compute_class_stats(
        loader,
        num_classes=len(classes),
        ignore_index=ignore_index,
        class_names=classes,
        num_labels=len(dataset),
        workers=workers,
        describe=describe)


def stats_from_folder(ann_dir: str,
                      num_classes: int,
                      ignore_index: int = 255,
                      class_names: Optional[Sequence[str]] = None,
                      suffix: str = '.png',
                      workers: int = 0) -> Dict:
    """Class statistics of the ``*<suffix>`` label files under ``ann_dir``
    (recursive), read as they are stored."""
    files = list_label_files(ann_dir, suffix)
    if not files:
        raise FileNotFoundError(f'no *{suffix} files under {ann_dir}')
    return compute_class_stats(
        files,
        num_classes=num_classes,
        ignore_index=ignore_index,
        class_names=class_names,
        workers=workers)


def plot_class_frequencies(stats: Dict, path: str,
                           thresholds: Tuple[float, float] = (1 / 3, 2 / 3)
                           ) -> None:
    """Sorted per-class pixel frequency (log scale) into the PNG ``path``,
    bars coloured by head / body / tail group."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

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


def format_class_table(stats: Dict) -> str:
    """Per-class pixels, pixel share (%), images and image frequency (% of
    the images containing the class), one line a class; then the Gini
    coefficients of the pixel and of the image counts over the classes."""
    counts = np.asarray(stats['pixel_counts'])
    total = max(counts.sum(), 1)
    img_freq = image_frequencies(stats)
    width = max(len(n) for n in stats['classes'])
    lines = [f'{"id":>3} {"class":<{width}} {"pixels":>12} {"%":>7} '
             f'{"images":>7} {"img %":>7}']
    for i, (name, px, im, fr) in enumerate(
            zip(stats['classes'], stats['pixel_counts'],
                stats['image_counts'], img_freq)):
        lines.append(f'{i:>3} {name:<{width}} {px:>12} '
                     f'{100 * px / total:>7.3f} {im:>7} {100 * fr:>7.2f}')
    gini = class_gini(stats)
    lines.append('Gini coefficient over classes (0: uniform, near 1: a few '
                 f'classes hold all): pixels {gini["pixel"]:.4f}, images '
                 f'{gini["image"]:.4f}')
    return '\n'.join(lines)


def report_class_weights(stats: Dict, names: Sequence[str],
                         out_dir: Optional[str] = None) -> Dict[str, list]:
    """Print the per-class weights of the generators ``names``
    (:mod:`mmseg_longtail.utils.class_weights`) and, with ``out_dir``, write
    each as ``<out_dir>/<name>.json``: a plain list, the weight file any
    loss's ``class_weight`` reads (mmseg's own losses included)."""
    weights = {n: class_weights_from_stats(stats, n).tolist() for n in names}
    print(weight_table(stats, names))
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        for name, values in weights.items():
            path = osp.join(out_dir, f'{name}.json')
            with open(path, 'w') as f:
                json.dump(values, f)
            print(f'wrote {path}')
    return weights


def class_weights_from_file(stats_file: str, names: Sequence[str],
                            out_dir: Optional[str] = None
                            ) -> Dict[str, list]:
    """:func:`report_class_weights` of an existing statistics JSON."""
    return report_class_weights(load_class_stats(stats_file), names, out_dir)


def _save_and_report(stats: Dict, out: str, plot: Optional[str],
                     weights: Optional[Sequence[str]] = None,
                     weights_dir: Optional[str] = None) -> Dict:
    """Write the JSON (and the plot, the class weights), printing the table
    as it goes."""
    save_class_stats(stats, out)
    print(format_class_table(stats))
    print(f'{stats["num_images"]} images; wrote {out}')
    if plot:
        plot_class_frequencies(stats, plot)
        print(f'wrote {plot}')
    if weights:
        report_class_weights(stats, weights, weights_dir)
    return stats


def write_class_stats(config: str,
                      out: str,
                      split: str = 'train',
                      workers: int = 0,
                      plot: Optional[str] = None,
                      cfg_options: Optional[Dict] = None,
                      weights: Optional[Sequence[str]] = None,
                      weights_dir: Optional[str] = None) -> Dict:
    """Count the classes of a config's split and write the JSON ``out``.

    Args:
        config: config file path.
        out: statistics JSON to write (its folder is created).
        split: which dataloader of the config to count.
        workers: label-reading processes (0 or 1: this process).
        plot: also draw the class-frequency plot into this PNG.
        cfg_options: overrides merged into the config first.
        weights: class-weight generators to print (and write to
            ``weights_dir``, see :func:`report_class_weights`).
        weights_dir: folder for ``<generator>.json`` weight lists.

    Returns:
        the statistics as written (see
        :func:`mmseg_longtail.utils.compute_class_stats`).
    """
    stats = stats_from_config(config, split, workers, cfg_options)
    return _save_and_report(stats, out, plot, weights, weights_dir)


def write_folder_class_stats(ann_dir: str,
                             out: str,
                             num_classes: int,
                             ignore_index: int = 255,
                             class_names: Optional[Sequence[str]] = None,
                             suffix: str = '.png',
                             workers: int = 0,
                             plot: Optional[str] = None,
                             weights: Optional[Sequence[str]] = None,
                             weights_dir: Optional[str] = None) -> Dict:
    """:func:`write_class_stats` for a folder of label files (see
    :func:`stats_from_folder`) instead of a config."""
    stats = stats_from_folder(ann_dir, num_classes, ignore_index,
                              class_names, suffix, workers)
    return _save_and_report(stats, out, plot, weights, weights_dir)
