"""Class-aware sampling of training images: two DATASETS wrappers.

* :class:`RareClassSampleDataset`: Rare Class Sampling of DAFormer (Hoyer
  et al., CVPR 2022). Each sample draws a class ``c`` with
  ``P(c) = softmax((1 - f_c) / T)`` over the training pixel frequencies
  ``f_c``, then an image holding at least ``min_pixels`` pixels of ``c``,
  then runs the wrapped data set's pipeline (random resize / crop) again
  until the crop holds at least ``min_crop_ratio * min_pixels`` pixels of
  ``c`` (``max_retries`` tries; a crop that never gets there is returned and
  logged).
* :class:`RepeatFactorDataset`: repeat-factor sampling of LVIS (Gupta et
  al., CVPR 2019) through mmengine's ``ClassBalancedDataset``:
  ``r_c = max(1, sqrt(t / f_c))`` with ``f_c`` the fraction of images that
  contain ``c``, an image repeated ``ceil(max_{c in image} r_c)`` times.

Both read the per-image class pixel counts from the class statistics JSON
(``per_image_pixel_counts``, written by
``tools/analysis_tools/class_stats.py`` for the same split, in data set
order), so no label is read at start-up. This package's data sets also have
``get_cat_ids`` (:func:`present_classes` of the label map), so mmengine's
own ``ClassBalancedDataset`` wraps them directly.
"""
import logging
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.dataset import ClassBalancedDataset
from mmengine.dist import get_dist_info
from mmengine.logging import print_log
from mmseg.registry import DATASETS

from mmseg_longtail.utils.class_stats import (load_class_stats,
                                              require_stats_field)


def present_classes(label: np.ndarray, num_classes: int,
                    ignore_index: int = 255) -> List[int]:
    """Class ids occurring in a label map (``ignore_index`` and values
    outside ``0..C-1`` left out), sorted: ``get_cat_ids`` of a
    segmentation image."""
    values = np.unique(np.asarray(label))
    keep = (values != ignore_index) & (values >= 0) & (values < num_classes)
    return values[keep].astype(int).tolist()


class CatIdsMixin:
    """``get_cat_ids(idx)`` from the data set's ``get_gt_seg_map(idx)``
    (the classes present, :func:`present_classes`), cached: what mmengine's
    ``ClassBalancedDataset`` asks of a data set (twice per image)."""

    def get_cat_ids(self, idx: int) -> List[int]:
        cache = self.__dict__.setdefault('_cat_ids_cache', {})
        if idx not in cache:
            cache[idx] = present_classes(
                self.get_gt_seg_map(idx), len(self.metainfo['classes']),
                self.ignore_index)
        return cache[idx]


def rcs_class_probabilities(pixel_counts: Sequence[float],
                            temperature: float) -> np.ndarray:
    """``softmax((1 - f_c) / T)``, ``f_c = n_c / sum n`` (DAFormer's RCS).
    Small ``T`` favours rare classes; ``T -> inf`` is uniform."""
    if not temperature > 0:
        raise ValueError(f'temperature must be > 0, got {temperature}')
    n = np.asarray(pixel_counts, dtype=np.float64)
    f = n / max(n.sum(), 1.0)
    logits = (1.0 - f) / temperature
    p = np.exp(logits - logits.max())  # stable for tiny temperatures
    return p / p.sum()


def lvis_repeat_factors(present: np.ndarray, threshold: float
                        ) -> np.ndarray:
    """Image repeat factors of LVIS from an (N, C) bool presence matrix:
    ``r_c = max(1, sqrt(t / f_c))``, ``f_c`` = fraction of images holding
    ``c``; an image's factor is the max over its classes (1 without any)."""
    present = np.asarray(present, dtype=bool)
    freq = present.mean(0)
    r = np.maximum(1.0, np.sqrt(threshold / np.maximum(freq, 1e-12)))
    return np.where(present, r[None, :], 1.0).max(1, initial=1.0)


def _dataset_label_files(dataset, n: int) -> Optional[List[str]]:
    """Basenames of the data set's label files, when it has them."""
    try:
        return [osp.basename(dataset.get_data_info(i)['seg_map_path'])
                for i in range(n)]
    except (KeyError, TypeError, AttributeError):
        return None


def load_per_image_counts(class_stats: Union[str, Dict], dataset,
                          owner: str) -> np.ndarray:
    """(N, C) per-image class pixel counts of ``class_stats`` (path or
    loaded dict), checked against ``dataset`` (number of images and
    classes, label file names when the statistics hold them)."""
    source = class_stats if isinstance(class_stats, str) else 'class_stats'
    stats = load_class_stats(class_stats) if isinstance(
        class_stats, (str, os.PathLike)) else class_stats
    rows = np.asarray(
        require_stats_field(stats, 'per_image_pixel_counts', str(source),
                            owner), dtype=np.int64)
    num_classes = len(dataset.metainfo['classes'])
    if rows.ndim != 2 or rows.shape != (len(dataset), num_classes):
        raise ValueError(
            f'{owner}: class_stats {source!r} count {rows.shape[0]} images x '
            f'{rows.shape[1] if rows.ndim == 2 else "?"} classes, the data '
            f'set has {len(dataset)} x {num_classes}; write the statistics '
            'of this split with tools/analysis_tools/class_stats.py')
    files = stats.get('image_files')
    if files:
        ours = _dataset_label_files(dataset, len(dataset))
        theirs = [osp.basename(f) for f in files]
        if ours is not None and ours != theirs:
            bad = next(i for i, (a, b) in enumerate(zip(ours, theirs))
                       if a != b)
            raise ValueError(
                f'{owner}: class_stats {source!r} image {bad} is '
                f'{theirs[bad]!r}, the data set\'s is {ours[bad]!r}: the '
                'statistics are of another split or order')
    return rows


def _build(dataset):
    return DATASETS.build(dataset) if isinstance(dataset, dict) else dataset


def _gt_of(sample) -> np.ndarray:
    """The label map of a pipeline output (packed or not)."""
    if isinstance(sample, dict) and 'data_samples' in sample:
        data = sample['data_samples'].gt_sem_seg.data
    elif isinstance(sample, dict) and 'gt_seg_map' in sample:
        data = sample['gt_seg_map']
    else:
        raise TypeError('RareClassSampleDataset: the pipeline output has '
                        'neither data_samples.gt_sem_seg nor gt_seg_map')
    return data.numpy() if isinstance(data, torch.Tensor) else \
        np.asarray(data)


@DATASETS.register_module()
class RareClassSampleDataset:
    """Rare Class Sampling (DAFormer, Hoyer et al., CVPR 2022) over any
    mmseg data set (see the module docstring).

    Randomness: each process draws from its own ``numpy`` generator seeded
    with ``(seed, rank, data-loader worker id)``; ``seed=None`` takes it from
    numpy's global generator, which mmengine seeds from the runner's
    ``randomness.seed`` (per rank and worker). The draws ignore the sampler's
    index, so any sampler (DDP included) works, and since mmengine replays
    the consumed batches on ``--resume``, a resumed run draws what the
    uninterrupted one did.

    Args:
        dataset (dict | BaseDataset): the wrapped data set (with its
            training pipeline, random crop included).
        class_stats (str | dict): statistics JSON of this split (needs
            ``per_image_pixel_counts``; rewrite older files).
        temperature (float): ``T``. Default: 0.01 (DAFormer's).
        min_pixels (int): an image is eligible for class ``c`` with at least
            this many pixels of ``c``. Default: 3000 (DAFormer's).
        min_crop_ratio (float): a crop passes with at least
            ``min_crop_ratio * min_pixels`` pixels of ``c``; 0 disables the
            retries. Default: 0.5 (DAFormer's).
        max_retries (int): crops tried after the first. Default: 10.
        seed (int, optional): see above.
        length (int, optional): the wrapper's length (samples per "epoch"
            for epoch-based loops). Default: the data set's.
    """

    def __init__(self,
                 dataset,
                 class_stats: Union[str, Dict],
                 temperature: float = 0.01,
                 min_pixels: int = 3000,
                 min_crop_ratio: float = 0.5,
                 max_retries: int = 10,
                 seed: Optional[int] = None,
                 length: Optional[int] = None,
                 lazy_init: bool = False) -> None:
        self.dataset = _build(dataset)
        if min_pixels < 1:
            raise ValueError(f'min_pixels must be >= 1, got {min_pixels}')
        if not 0 <= min_crop_ratio:
            raise ValueError(f'min_crop_ratio must be >= 0, got '
                             f'{min_crop_ratio}')
        if max_retries < 0:
            raise ValueError(f'max_retries must be >= 0, got {max_retries}')
        self.temperature = float(temperature)
        rcs_class_probabilities([1.0], self.temperature)  # checks T
        self.min_pixels = int(min_pixels)
        self.crop_pixels = float(min_crop_ratio) * self.min_pixels
        self.max_retries = int(max_retries)
        self.seed = seed
        self.class_stats = class_stats
        self._length = length
        self._metainfo = self.dataset.metainfo
        self._rng = None
        self._rng_pid = None
        self.failed_crops = 0  # in this process
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self) -> dict:
        return dict(self._metainfo)

    def full_init(self) -> None:
        if self._fully_initialized:
            return
        self.dataset.full_init()
        rows = load_per_image_counts(self.class_stats, self.dataset,
                                     'RareClassSampleDataset')
        eligible = rows >= self.min_pixels
        self.images_of = [np.flatnonzero(eligible[:, c])
                          for c in range(rows.shape[1])]
        has_images = eligible.any(0)
        if not has_images.any():
            raise ValueError(
                f'RareClassSampleDataset: no image holds min_pixels='
                f'{self.min_pixels} pixels of any class; lower min_pixels')
        probs = rcs_class_probabilities(rows.sum(0), self.temperature)
        probs = np.where(has_images, probs, 0.0)
        self.class_probs = probs / probs.sum()
        classes = self._metainfo['classes']
        skipped = [classes[c] for c in np.flatnonzero(~has_images)]
        if skipped:
            print_log(f'RareClassSampleDataset: no image holds '
                      f'min_pixels={self.min_pixels} pixels of {skipped}; '
                      'they are never drawn', logger='current',
                      level=logging.WARNING)
        print_log('RareClassSampleDataset: class probabilities ' + ', '.join(
            f'{n}={p:.3f}' for n, p in zip(classes, self.class_probs)),
                  logger='current')
        self._fully_initialized = True

    def __len__(self) -> int:
        return len(self.dataset) if self._length is None else self._length

    def generator(self) -> np.random.Generator:
        """This process's generator (a forked worker makes its own)."""
        if self._rng is None or self._rng_pid != os.getpid():
            seed = self.seed
            if seed is None:  # the runner-seeded global generator
                seed = int(np.random.randint(2**31))
            worker = torch.utils.data.get_worker_info()
            rank, _ = get_dist_info()
            self._rng = np.random.default_rng(
                [int(seed), rank, 0 if worker is None else worker.id])
            self._rng_pid = os.getpid()
        return self._rng

    def draw(self, rng: Optional[np.random.Generator] = None):
        """(class, image index) of one rare-class draw."""
        self.full_init()
        rng = rng or self.generator()
        c = int(rng.choice(len(self.class_probs), p=self.class_probs))
        return c, int(rng.choice(self.images_of[c]))

    def crop(self, c: int, index: int):
        """The wrapped sample ``index`` (pipeline run up to
        ``1 + max_retries`` times) and whether it holds enough of ``c``."""
        for _ in range(1 + self.max_retries):
            sample = self.dataset[index]
            if (_gt_of(sample) == c).sum() >= self.crop_pixels:
                return sample, True
        self.failed_crops += 1
        name = self._metainfo['classes'][c]
        print_log(f'RareClassSampleDataset: {1 + self.max_retries} crops of '
                  f'image {index} all hold fewer than {self.crop_pixels:g} '
                  f'pixels of {name!r} (class {c}); using the last one '
                  f'({self.failed_crops} such draws in this process)',
                  logger='current', level=logging.WARNING)
        return sample, False

    def __getitem__(self, idx: int):
        c, index = self.draw()
        return self.crop(c, index)[0]

    def get_data_info(self, idx: int) -> dict:
        return self.dataset.get_data_info(idx % len(self.dataset))


@DATASETS.register_module()
class RepeatFactorDataset(ClassBalancedDataset):
    """LVIS repeat-factor sampling (mmengine's ``ClassBalancedDataset``)
    with the image classes taken from the class statistics, so it wraps any
    mmseg data set without reading a label.

    ``r_c = max(1, sqrt(oversample_thr / f_c))``, ``f_c`` the fraction of
    images holding at least ``min_pixels`` pixels of ``c``; image ``i`` is
    repeated ``ceil(max_{c in i} r_c)`` times (1 without any class;
    mmengine rounds up where LVIS rounds stochastically).

    Args:
        dataset (dict | BaseDataset): the wrapped data set.
        class_stats (str | dict): statistics JSON of this split
            (``per_image_pixel_counts``).
        oversample_thr (float): ``t``. Images whose rarest class occurs in
            more than this fraction of images are not repeated.
        min_pixels (int): pixels of a class for it to count in an image.
            Default: 1.
    """

    def __init__(self,
                 dataset,
                 class_stats: Union[str, Dict],
                 oversample_thr: float,
                 min_pixels: int = 1,
                 lazy_init: bool = False) -> None:
        if not oversample_thr > 0:
            raise ValueError(f'oversample_thr must be > 0, got '
                             f'{oversample_thr}')
        self.class_stats = class_stats
        self.min_pixels = int(min_pixels)
        self.image_classes: Optional[np.ndarray] = None
        super().__init__(_build(dataset), oversample_thr, lazy_init)

    def full_init(self) -> None:
        if self._fully_initialized:
            return
        self.dataset.full_init()
        rows = load_per_image_counts(self.class_stats, self.dataset,
                                     'RepeatFactorDataset')
        self.image_classes = rows >= self.min_pixels
        super().full_init()

    def _get_repeat_factors(self, dataset, repeat_thr: float) -> List[float]:
        return lvis_repeat_factors(self.image_classes, repeat_thr).tolist()

    def get_cat_ids(self, idx: int) -> List[int]:
        self.full_init()
        return np.flatnonzero(
            self.image_classes[self._get_ori_dataset_idx(idx)]).tolist()
