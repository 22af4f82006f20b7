"""Class-frequency statistics: counting and the statistics JSON.

:mod:`mmseg_longtail.analysis.class_stats` (command line
``tools/analysis_tools/class_stats.py``) feeds it the labels of a config's
split or of a folder.

Data flow: label maps -> :func:`compute_class_stats` -> JSON file ->
:func:`load_class_counts` -> ``class_counts`` of the long-tail losses, CeCo and
the long-tail metric. The JSON holds, in class-id order::

    {"classes": [...], "ignore_index": 255, "num_images": N,
     "pixel_counts": [...], "image_counts": [...]}

``pixel_counts[c]`` is the number of labelled pixels of class ``c``;
``image_counts[c]`` the number of images in which class ``c`` occurs.
Ignored pixels are never counted.

Optional keys, written by the current tool and read only by what needs them
(older files keep loading; :func:`require_stats_field` names a missing key
when a consumer needs it):

* ``image_pixel_totals[c]``: labelled pixels of the images that contain
  class ``c``, summed (the denominator of median-frequency balancing);
* ``per_image_pixel_counts``: one list of per-class pixel counts per image,
  in data set order (rare-class sampling, repeat factors);
* ``image_files``: the label file of each image (its basename is checked
  against the data set's order), where the labels came from files;
* ``image_frequencies[c]``: ``image_counts[c] / num_images``, the fraction
  of the images in which class ``c`` occurs;
* ``gini``: ``{"pixel": G, "image": G}``, the Gini coefficients of
  ``pixel_counts`` and ``image_counts`` over the classes
  (:func:`gini_coefficient`; ``null`` when undefined).

Readers derive the last two from the counts with :func:`image_frequencies`
and :func:`class_gini`, so files written before them give the same values.
"""
import json
import math
import multiprocessing
import os
import os.path as osp
from typing import (Callable, Dict, Iterable, List, Optional, Sequence,
                    Tuple, Union)

import numpy as np

from .errors import with_file_name

COUNT_KINDS = ('pixel', 'image')
CountsLike = Union[str, Sequence[float], np.ndarray]


def count_label_map(label: np.ndarray, num_classes: int,
                    ignore_index: int = 255,
                    source: str = 'label map') -> np.ndarray:
    """Per-class pixel counts of one label map, ``ignore_index`` excluded.

    Raises:
        ValueError: if a value is neither a class id nor ``ignore_index``.
    """
    flat = np.asarray(label).reshape(-1).astype(np.int64)
    flat = flat[flat != ignore_index]
    if flat.size and (flat.min() < 0 or flat.max() >= num_classes):
        bad = np.unique(flat[(flat < 0) | (flat >= num_classes)])[:10]
        raise ValueError(
            f'{source}: label values {bad.tolist()} are outside 0..'
            f'{num_classes - 1} and are not ignore_index={ignore_index}; '
            'check --num-classes / --ignore-index')
    return np.bincount(flat, minlength=num_classes)


def read_label_png(path: str) -> np.ndarray:
    """Read an 8/16-bit label PNG (palette PNGs give their indices)."""
    from PIL import Image
    with Image.open(path) as img:
        return np.asarray(img)


# Workers inherit the loader through fork, so any callable (a data set's
# bound method, a closure) works without pickling.
_WORKER_LOADER: Optional[Tuple[Callable[[int], np.ndarray],
                               Callable[[int], str]]] = None


def _count_item(args: Tuple[int, int, int]) -> np.ndarray:
    i, num_classes, ignore_index = args
    assert _WORKER_LOADER is not None
    load, describe = _WORKER_LOADER
    try:
        label = load(i)
    except Exception as error:
        # decoders name no file (PIL: "image file is truncated")
        source = describe(i)
        if source in str(error):
            raise
        raise with_file_name(error, source) from error
    return count_label_map(label, num_classes, ignore_index, describe(i))


def _progress(iterable: Iterable, total: int, desc: str, enabled: bool):
    if not enabled:
        return iterable
    from tqdm import tqdm
    return tqdm(iterable, total=total, desc=desc, unit='img')


def compute_class_stats(labels: Union[Sequence[str], Sequence[np.ndarray],
                                      Callable[[int], np.ndarray]],
                        num_classes: int,
                        ignore_index: int = 255,
                        class_names: Optional[Sequence[str]] = None,
                        num_labels: Optional[int] = None,
                        workers: int = 1,
                        progress: bool = True,
                        describe: Optional[Callable[[int], str]] = None
                        ) -> Dict:
    """Count pixels and images per class.

    Args:
        labels: label PNG paths, label arrays, or a callable ``i -> array``
            (with ``num_labels``), e.g. a data set's ground-truth loader.
        num_classes: number of classes K; values must lie in ``0..K-1`` or
            equal ``ignore_index``.
        ignore_index: label value that is not counted.
        class_names: names in class-id order (default ``class0..``).
        num_labels: number of labels when ``labels`` is a callable.
        describe: with a callable, ``i -> name`` of label ``i`` in errors
            (e.g. its file; default ``label <i>``).
        workers: worker processes reading the labels (forked).
        progress: show a progress bar.

    Returns:
        dict with keys ``classes``, ``ignore_index``, ``num_images``,
        ``pixel_counts``, ``image_counts``, ``image_pixel_totals``,
        ``image_frequencies`` (lists in class-id order),
        ``per_image_pixel_counts`` (one list per label, in input order) and
        ``gini`` (see the module docstring). An image counts for class
        ``c`` when it has at least one non-ignored pixel of ``c`` (one
        ``bincount`` per image, then ``> 0``).
    """
    global _WORKER_LOADER
    if num_classes < 1:
        raise ValueError(f'num_classes must be >= 1, got {num_classes}')
    if class_names is None:
        class_names = [f'class{i}' for i in range(num_classes)]
    if len(class_names) != num_classes:
        raise ValueError(f'class_names has {len(class_names)} entries, '
                         f'num_classes is {num_classes}')
    if callable(labels):
        if num_labels is None:
            raise ValueError('num_labels is required with a callable')
        loader, total = labels, int(num_labels)
        if describe is None:

            def describe(i: int) -> str:
                return f'label {i}'
    else:
        items = list(labels)
        total = len(items)

        def loader(i: int) -> np.ndarray:
            item = items[i]
            if isinstance(item, (str, os.PathLike)):
                return read_label_png(str(item))
            return np.asarray(item)

        def describe(i: int) -> str:
            item = items[i]
            return str(item) if isinstance(item, (str, os.PathLike)) else \
                f'label {i}'

    pixels = np.zeros(num_classes, dtype=np.int64)
    images = np.zeros(num_classes, dtype=np.int64)
    image_totals = np.zeros(num_classes, dtype=np.int64)
    rows = []  # per-image counts, in input order
    args = [(i, num_classes, ignore_index) for i in range(total)]
    desc = f'class stats ({workers} worker{"s" if workers > 1 else ""})'
    _WORKER_LOADER = (loader, describe)
    pool = None
    try:
        per_image = map(_count_item, args)
        if workers > 1 and total > 1:
            pool = multiprocessing.get_context('fork').Pool(workers)
            per_image = pool.imap(_count_item, args, chunksize=4)
        for counts in _progress(per_image, total, desc, progress):
            pixels += counts
            images += counts > 0
            image_totals += (counts > 0) * counts.sum()
            rows.append(counts.tolist())
    finally:
        if pool is not None:
            pool.terminate()
        _WORKER_LOADER = None
    stats = dict(
        classes=list(class_names),
        ignore_index=int(ignore_index),
        num_images=int(total),
        pixel_counts=pixels.tolist(),
        image_counts=images.tolist(),
        image_pixel_totals=image_totals.tolist(),
        image_frequencies=(images / max(total, 1)).tolist(),
        per_image_pixel_counts=rows)
    stats['gini'] = {
        kind: (None if math.isnan(g) else g)
        for kind, g in class_gini(stats).items()}
    if not callable(labels) and items and all(
            isinstance(item, (str, os.PathLike)) for item in items):
        # relative to the folder holding them all: no machine's paths
        paths = [osp.abspath(str(item)) for item in items]
        root = osp.commonpath([osp.dirname(p) for p in paths])
        stats['image_files'] = [osp.relpath(p, root) for p in paths]
    return stats


def list_label_files(ann_dir: str, suffix: str = '.png') -> List[str]:
    """Sorted label files under ``ann_dir`` (recursive)."""
    if not osp.isdir(ann_dir):
        raise FileNotFoundError(f'ann_dir {ann_dir!r} is not a directory')
    files = []
    for root, _, names in os.walk(ann_dir):
        files += [osp.join(root, n) for n in names if n.endswith(suffix)]
    return sorted(files)


def save_class_stats(stats: Dict, path: str) -> None:
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(stats, f, indent=2)


def load_class_stats(path: str, kinds: Sequence[str] = COUNT_KINDS) -> Dict:
    """Read and check a statistics JSON written by ``class_stats.py``.

    Args:
        path: the JSON file.
        kinds: the count lists the caller reads (``'pixel'``, ``'image'``):
            each ``<kind>_counts`` must be present. A file with pixel counts
            only serves ``count_type='pixel'``.

    Raises:
        FileNotFoundError / ValueError (not JSON, e.g. truncated, or not an
        object) / KeyError (a needed field missing), naming the file.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'class statistics file {path!r} not found; write it with '
            '`python tools/analysis_tools/class_stats.py CONFIG --out FILE`')
    with open(path) as f:
        try:
            stats = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(
                f'class statistics file {path!r} is not valid JSON '
                f'({e.msg} at line {e.lineno}, column {e.colno}: truncated '
                'or edited?); rewrite it with `python tools/analysis_tools/'
                'class_stats.py CONFIG --out FILE`') from None
    if not isinstance(stats, dict):
        raise ValueError(f'class statistics file {path!r} holds a '
                         f'{type(stats).__name__}, not the statistics object '
                         'written by class_stats.py')
    missing = [f'{k}_counts' for k in kinds if f'{k}_counts' not in stats]
    if missing:
        raise KeyError(f'class statistics file {path!r} lacks {missing} '
                       '(written by an older version or by hand?); rewrite '
                       'it with `python tools/analysis_tools/class_stats.py '
                       'CONFIG --out FILE`')
    return stats


def require_stats_field(stats: Dict, key: str, source: str,
                        needed_by: str) -> list:
    """``stats[key]``, or a KeyError naming the missing field, who needs it
    and how to get it (files written before the field existed lack it)."""
    if key not in stats:
        raise KeyError(
            f'{needed_by} needs the field {key!r}, which the class '
            f'statistics {source!r} lack (written by an older version); '
            'rewrite them with `python tools/analysis_tools/class_stats.py '
            'CONFIG --out FILE`')
    return stats[key]


def load_class_counts(counts: CountsLike,
                      num_classes: Optional[int] = None,
                      kind: str = 'pixel',
                      field: str = 'class_counts') -> np.ndarray:
    """Per-class counts from a list or a statistics JSON, validated.

    Args:
        counts: a sequence of K non-negative numbers, or the path of a JSON
            file written by ``class_stats.py``.
        num_classes: expected K; checked when given.
        kind: ``'pixel'`` or ``'image'`` counts, when reading a JSON file.
        field: the config field being read, named in error messages.

    Returns:
        float64 array of shape (K,). Zero counts are kept as they are;
        consumers clamp them (see :func:`class_prior`).

    Raises:
        ValueError / FileNotFoundError / KeyError naming ``field``.
    """
    if kind not in COUNT_KINDS:
        raise ValueError(f'{field}: count_type must be one of {COUNT_KINDS}, '
                         f'got {kind!r}')
    where = field  # named in every error: the field, and the file's key
    if isinstance(counts, (str, os.PathLike)):
        try:
            stats = load_class_stats(str(counts), kinds=(kind, ))
        except (FileNotFoundError, KeyError, ValueError) as e:
            raise type(e)(f'{field}: {e.args[0]}') from None
        values = stats[f'{kind}_counts']
        where = f'{field} ({str(counts)!r}, field {kind}_counts)'
    else:
        values = counts
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f'{where} must be a list of numbers or a statistics '
                         f'JSON path, got {type(values).__name__}') from None
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f'{where} must be a non-empty 1-D list of counts, '
                         f'got shape {arr.shape}')
    if not np.all(np.isfinite(arr)):
        raise ValueError(f'{where} contains non-finite values')
    if (arr < 0).any():
        bad = np.flatnonzero(arr < 0).tolist()
        raise ValueError(f'{where} has negative counts at class ids {bad}')
    if not arr.any():
        # clamped to 1 each, all-zero counts would pass as a uniform prior
        raise ValueError(f'{where} are all zero: no labelled pixel was '
                         'counted (wrong --ignore-index / --num-classes, or '
                         'an empty split?)')
    if num_classes is not None and arr.size != num_classes:
        raise ValueError(f'{where} has {arr.size} counts but num_classes is '
                         f'{num_classes}')
    return arr


def class_prior(counts: np.ndarray, min_count: float = 1.0) -> np.ndarray:
    """Class prior ``pi_c = n_c / sum(n)``, zero counts clamped to
    ``min_count`` so that ``log(pi)`` stays finite."""
    n = np.maximum(np.asarray(counts, dtype=np.float64), min_count)
    return n / n.sum()


def frequency_groups(pixel_counts: Sequence[float],
                     thresholds: Tuple[float, float] = (1 / 3, 2 / 3)
                     ) -> Dict[str, List[int]]:
    """Split classes into head / body / tail by training frequency.

    Classes are sorted by count, most frequent first; the first
    ``thresholds[0]`` fraction of classes is the head, those past
    ``thresholds[1]`` the tail (default: terciles).
    """
    lo, hi = thresholds
    if not 0 <= lo <= hi <= 1:
        raise ValueError(f'thresholds must satisfy 0 <= lo <= hi <= 1, '
                         f'got {thresholds}')
    counts = np.asarray(pixel_counts, dtype=np.float64)
    order = np.argsort(-counts, kind='stable')
    k = len(order)
    n_head, n_body_end = int(round(lo * k)), int(round(hi * k))
    return dict(
        head=sorted(order[:n_head].tolist()),
        body=sorted(order[n_head:n_body_end].tolist()),
        tail=sorted(order[n_body_end:].tolist()))


def gini_coefficient(values: Sequence[float]) -> float:
    """Gini coefficient of non-negative values (classes with 0 included).

    ``G = sum_i sum_j |x_i - x_j| / (2 n^2 mean(x))``, the mean absolute
    difference over all ordered pairs (``i = j`` included) divided by twice
    the mean; computed as ``sum_i (2i - n - 1) x_(i) / (n sum(x))`` over
    the values sorted ascending (``i = 1..n``). 0 when all values are
    equal; ``(n - 1) / n`` (approaching 1) when one value holds everything.
    NaN for no values or an all-zero list.

    Raises:
        ValueError: for negative or non-finite values.
    """
    x = np.sort(np.asarray(values, dtype=np.float64).reshape(-1))
    if not np.all(np.isfinite(x)) or (x < 0).any():
        raise ValueError('gini_coefficient needs finite non-negative values')
    n, total = x.size, x.sum()
    if n == 0 or total == 0:
        return float('nan')
    rank = np.arange(1, n + 1, dtype=np.float64)
    return float(np.dot(2 * rank - n - 1, x) / (n * total))


def image_frequencies(stats: Dict,
                      source: str = 'statistics') -> np.ndarray:
    """Per-class fraction of the images that contain the class,
    ``image_counts / num_images`` (NaN when no image was counted); also for
    files written before ``image_frequencies`` was stored. ``source`` (the
    file) is named when ``image_counts`` is missing."""
    counts = np.asarray(require_stats_field(
        stats, 'image_counts', source, 'image_frequencies'),
        dtype=np.float64)
    n = stats.get('num_images')
    if not n:
        return np.full(counts.shape, np.nan)
    return counts / float(n)


def class_gini(stats: Dict) -> Dict[str, float]:
    """:func:`gini_coefficient` of each count list the statistics hold:
    ``{'pixel': G_pixels, 'image': G_images}`` (keys for the lists
    present)."""
    return {kind: gini_coefficient(stats[f'{kind}_counts'])
            for kind in COUNT_KINDS if f'{kind}_counts' in stats}
