"""Helpers shared by the converters in :mod:`.converters`.

Kept apart from the per-data-set modules so that the converters stay short
and the split and label-writing rules are tested once.
"""
import os
import os.path as osp
import shutil
from typing import Dict, List, Optional, Sequence

import numpy as np

SPLIT_NAMES = ('train', 'val', 'test')


def seeded_split(names: Sequence[str],
                 ratios: Sequence[float] = (0.8, 0.1, 0.1),
                 seed: int = 0) -> Dict[str, List[str]]:
    """Random train / val / test split, reproducible from ``seed``.

    ``names`` are sorted first, so the split depends only on the set of
    names, the ratios and the seed (not on file-system order). The train and
    val sizes are ``round(ratio * n)``; test takes the rest.

    Returns:
        dict split name -> sorted list of names.
    """
    ratios = [float(r) for r in ratios]
    if len(ratios) != 3 or min(ratios) < 0 or abs(sum(ratios) - 1) > 1e-6:
        raise ValueError(f'ratios must be 3 non-negative fractions summing '
                         f'to 1 (train, val, test), got {ratios}')
    ordered = sorted(names)
    if len(set(ordered)) != len(ordered):
        raise ValueError('names for the split contain duplicates')
    n = len(ordered)
    perm = np.random.default_rng(seed).permutation(n)
    n_train = int(round(ratios[0] * n))
    n_val = min(int(round(ratios[1] * n)), n - n_train)
    bounds = (0, n_train, n_train + n_val, n)
    return {
        split: sorted(ordered[i] for i in perm[bounds[k]:bounds[k + 1]])
        for k, split in enumerate(SPLIT_NAMES)
    }


def save_label_png(label: np.ndarray, path: str) -> None:
    """Write an 8-bit single-channel label PNG (values 0..255)."""
    from PIL import Image
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f'{path}: label must be 2-D, got {label.shape}')
    if label.size and (label.min() < 0 or label.max() > 255):
        raise ValueError(f'{path}: label values must fit 8 bits')
    os.makedirs(osp.dirname(path), exist_ok=True)
    Image.fromarray(label.astype(np.uint8)).save(path)


def save_rgb_image(src: str, dst: str, fmt: str = 'jpg',
                   quality: int = 95) -> None:
    """Store ``src`` as an RGB ``fmt`` ('jpg' or 'png') image at ``dst``.

    An RGB JPEG going to 'jpg' is copied byte for byte; anything else
    (grayscale, CMYK, RGBA, palette, PNG data behind a .jpg name) is
    converted to RGB first, so every image decodes to 3 channels.
    """
    from PIL import Image
    if fmt not in ('jpg', 'png'):
        raise ValueError(f"image format must be 'jpg' or 'png', got {fmt!r}")
    os.makedirs(osp.dirname(dst), exist_ok=True)
    with Image.open(src) as img:
        if fmt == 'jpg' and img.format == 'JPEG' and img.mode == 'RGB':
            shutil.copyfile(src, dst)
            return
        rgb = img.convert('RGB')
    if fmt == 'jpg':
        rgb.save(dst, format='JPEG', quality=quality)
    else:
        rgb.save(dst, format='PNG')


def save_array_image(rgb: np.ndarray, dst: str) -> None:
    """Write an (H, W, 3) uint8 array as a lossless PNG."""
    from PIL import Image
    os.makedirs(osp.dirname(dst), exist_ok=True)
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f'{dst}: image must be (H, W, 3), got {rgb.shape}')
    Image.fromarray(rgb).save(dst, format='PNG')


def write_split_lists(out_dir: str, splits: Dict[str, Sequence[str]],
                      folder: Optional[str] = 'splits') -> None:
    """Record each split's names as ``<out_dir>/splits/<split>.txt``."""
    list_dir = osp.join(out_dir, folder)
    os.makedirs(list_dir, exist_ok=True)
    for split, names in splits.items():
        with open(osp.join(list_dir, f'{split}.txt'), 'w') as f:
            f.writelines(f'{n}\n' for n in names)


def label_lut(mapping: Dict[int, int], default: int = 255) -> np.ndarray:
    """256-entry lookup table: ``lut[raw] = new``; other ids -> default."""
    lut = np.full(256, default, dtype=np.uint8)
    for raw, new in mapping.items():
        lut[int(raw)] = int(new)
    return lut
