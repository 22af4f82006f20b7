"""A built-in long-tailed segmentation data set that needs no files.

Used for the quick start, tests and smoke runs of every config.
"""
from typing import Dict, List, Sequence, Tuple, Union

import numpy as np
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from .class_sampling import CatIdsMixin


def geometric_class_frequencies(num_classes: int,
                                imbalance_ratio: float) -> np.ndarray:
    """Class pixel frequencies ``p_c ∝ ratio^(-c / (K - 1))``, summing to 1.

    Class 0 is the head, class ``K-1`` the tail, and ``p_0 / p_{K-1}`` equals
    ``imbalance_ratio``.
    """
    if num_classes == 1:
        return np.ones(1)
    c = np.arange(num_classes, dtype=np.float64)
    w = float(imbalance_ratio)**(-c / (num_classes - 1))
    return w / w.sum()


@DATASETS.register_module()
class SyntheticLongTailDataset(CatIdsMixin, BaseSegDataset):
    """Deterministic synthetic long-tailed segmentation data, no files.

    Each image is a grid of ``cell_size`` x ``cell_size`` blocks; every block
    takes a class drawn from :func:`geometric_class_frequencies`, so class
    pixel frequencies decay geometrically from head (class 0) to tail
    (class ``K-1``) with ``p_0 / p_{K-1} = imbalance_ratio``. Pixels are
    coloured by class (a distinct mean colour, a class-specific stripe texture
    and Gaussian noise), which makes the classes learnable by a small model.
    The bottom ``ignore_rows`` rows are labelled ``ignore_index`` (an ignore
    region like a car bonnet).

    Sample ``i`` depends only on ``(seed, i)``. The expected statistics are in
    closed form (:meth:`expected_pixel_counts`); the exact ones come from
    ``tools/analysis_tools/class_stats.py`` (via :meth:`get_gt_seg_map`).

    Args:
        num_classes: number of classes K (>= 2).
        img_size: (height, width) of every image.
        length: number of samples.
        imbalance_ratio: head-to-tail pixel frequency ratio (>= 1).
        cell_size: side of the square label blocks, in pixels.
        ignore_rows: rows at the bottom labelled ``ignore_index``.
        noise_std: std of the per-pixel colour noise (0..255 scale).
        seed: base seed; ``seed + i`` generates sample ``i``.
        ignore_index: label of ignored pixels.
        pipeline: transforms applied to ``img`` / ``gt_seg_map`` (no loading
            transforms are needed).
    """

    METAINFO: Dict = dict()

    def __init__(self,
                 num_classes: int = 5,
                 img_size: Union[int, Sequence[int]] = (64, 64),
                 length: int = 64,
                 imbalance_ratio: float = 50.0,
                 cell_size: int = 8,
                 ignore_rows: int = 4,
                 noise_std: float = 20.0,
                 seed: int = 0,
                 ignore_index: int = 255,
                 pipeline: Sequence = (),
                 test_mode: bool = False,
                 lazy_init: bool = False,
                 **kwargs) -> None:
        if num_classes < 2:
            raise ValueError(f'num_classes must be >= 2, got {num_classes}')
        if imbalance_ratio < 1:
            raise ValueError(
                f'imbalance_ratio must be >= 1, got {imbalance_ratio}')
        if isinstance(img_size, int):
            img_size = (img_size, img_size)
        h, w = (int(s) for s in img_size)
        if cell_size < 1 or h < cell_size or w < cell_size:
            raise ValueError(f'cell_size={cell_size} must be in '
                             f'1..min(img_size)={min(h, w)}')
        if not 0 <= ignore_rows < h:
            raise ValueError(f'ignore_rows must be in 0..{h - 1}')
        if 0 <= ignore_index < num_classes:
            raise ValueError(f'ignore_index={ignore_index} collides with a '
                             f'class id (num_classes={num_classes})')
        self.num_classes = num_classes
        self.img_size: Tuple[int, int] = (h, w)
        self.length = int(length)
        self.imbalance_ratio = float(imbalance_ratio)
        self.cell_size = int(cell_size)
        self.ignore_rows = int(ignore_rows)
        self.noise_std = float(noise_std)
        self.seed = int(seed)
        self.class_freqs = geometric_class_frequencies(num_classes,
                                                       imbalance_ratio)
        # Fixed per-class appearance, independent of the sample seed.
        rng = np.random.default_rng(12345)
        self.class_colors = rng.integers(30, 226, size=(num_classes, 3))
        self.stripe_periods = 2 + np.arange(num_classes) % 5
        metainfo = dict(
            classes=tuple(f'class{i}' for i in range(num_classes)),
            palette=[c.tolist() for c in self.class_colors])
        super().__init__(
            metainfo=metainfo,
            pipeline=list(pipeline),
            test_mode=test_mode,
            lazy_init=lazy_init,
            ignore_index=ignore_index,
            **kwargs)

    def load_data_list(self) -> List[dict]:
        return [
            dict(sample_idx=i, img_path=f'synthetic/{i:06d}.png',
                 seg_map_path=f'synthetic/{i:06d}.png',
                 label_map=self.label_map, reduce_zero_label=False,
                 seg_fields=[]) for i in range(self.length)
        ]

    # ------------------------------------------------------------ generation
    def _generate(self, idx: int) -> Tuple[np.ndarray, np.ndarray]:
        h, w = self.img_size
        cs = self.cell_size
        rng = np.random.default_rng([self.seed, idx])
        gh, gw = -(-h // cs), -(-w // cs)
        cells = rng.choice(self.num_classes, size=(gh, gw), p=self.class_freqs)
        label = np.repeat(np.repeat(cells, cs, 0), cs, 1)[:h, :w]
        label = label.astype(np.uint8)
        colors = self.class_colors[label].astype(np.float32)
        # Class-specific horizontal stripes: texture, not only colour.
        rows = np.arange(h)[:, None]
        stripes = ((rows // self.stripe_periods[label]) % 2) * 24.0 - 12.0
        img = colors + stripes[..., None]
        img += rng.normal(0.0, self.noise_std, size=img.shape)
        img = np.clip(img, 0, 255).astype(np.uint8)
        if self.ignore_rows:
            label[h - self.ignore_rows:] = self.ignore_index
        return img, label

    def get_gt_seg_map(self, idx: int) -> np.ndarray:
        """The label map of sample ``idx`` as the model sees it."""
        return self._generate(self._check_idx(idx))[1]

    def _check_idx(self, idx: int) -> int:
        if not -self.length <= idx < self.length:
            raise IndexError(f'index {idx} out of range for length '
                             f'{self.length}')
        return idx % self.length

    def get_data_info(self, idx: int) -> dict:
        info = super().get_data_info(idx)
        img, label = self._generate(info['sample_idx'])
        info.update(
            img=img,
            gt_seg_map=label,
            img_shape=img.shape[:2],
            ori_shape=img.shape[:2],
            seg_fields=['gt_seg_map'])
        return info

    # ------------------------------------------------------------ statistics
    def expected_pixel_counts(self) -> np.ndarray:
        """Closed-form expected pixel count of each class over the data set."""
        h, w = self.img_size
        valid = (h - self.ignore_rows) * w
        return self.length * valid * self.class_freqs

    def expected_image_counts(self) -> np.ndarray:
        """Closed-form expected number of images containing each class.

        Only the blocks that reach above the ignore band count.
        """
        h, w = self.img_size
        cs = self.cell_size
        visible_rows = -(-(h - self.ignore_rows) // cs)
        n_cells = visible_rows * -(-w // cs)
        return self.length * (1 - (1 - self.class_freqs)**n_cells)
