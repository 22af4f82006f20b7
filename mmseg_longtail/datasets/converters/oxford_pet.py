"""Convert Oxford-IIIT Pet (images + trimaps) to the mmseg layout.

Input: the official archives unpacked into one folder::

    SRC/images/NAME.jpg
    SRC/annotations/trimaps/NAME.png    (1 pet, 2 background, 3 boundary)

Output (``out_dir``)::

    img_dir/{train,val,test}/NAME.jpg   (RGB; non-RGB / non-JPEG files are
                                         re-encoded)
    ann_dir/{train,val,test}/NAME.png   (0 background, 1 pet, 2 boundary)
    splits/{train,val,test}.txt

The split is the PAT paper's protocol: a seeded random 80/10/10 split over
all images that have a trimap.
"""
import os
import os.path as osp
from concurrent.futures import ProcessPoolExecutor
from typing import Dict, List, Sequence, Tuple

import numpy as np

from mmseg_longtail.datasets.conversion import (label_lut, save_label_png,
                                                save_rgb_image, seeded_split,
                                                write_split_lists)
from mmseg_longtail.utils import read_label_png

# official trimap value -> class id (background, pet, boundary)
TRIMAP_TO_CLASS = {2: 0, 1: 1, 3: 2}
TRIMAP_LUT = label_lut(TRIMAP_TO_CLASS)


def _stems(folder: str, suffixes: Tuple[str, ...]) -> Dict[str, str]:
    """NAME -> file name, skipping macOS '._' resource forks."""
    if not osp.isdir(folder):
        raise FileNotFoundError(f'{folder!r} is not a directory')
    return {
        osp.splitext(f)[0]: f
        for f in os.listdir(folder)
        if not f.startswith('._') and f.lower().endswith(suffixes)
    }


def convert_trimap(src: str, dst: str) -> None:
    """Write the class-id label PNG of one official trimap."""
    trimap = read_label_png(src)
    if trimap.ndim == 3:  # a few tools save trimaps as RGB; channels agree
        trimap = trimap[..., 0]
    bad = np.setdiff1d(np.unique(trimap), list(TRIMAP_TO_CLASS))
    if bad.size:
        raise ValueError(f'{src}: trimap values {bad.tolist()} are not '
                         'in {1, 2, 3}')
    save_label_png(TRIMAP_LUT[trimap], dst)


def _convert_one(job: Tuple[str, str, str, str, str]) -> None:
    img_src, tri_src, split, name, out_dir = job
    save_rgb_image(img_src, osp.join(out_dir, 'img_dir', split, name + '.jpg'))
    convert_trimap(tri_src, osp.join(out_dir, 'ann_dir', split, name + '.png'))


def convert_oxford_pet(src: str,
                       out_dir: str = 'data/oxford_pet',
                       seed: int = 0,
                       ratios: Sequence[float] = (0.8, 0.1, 0.1),
                       nproc: int = 1) -> Dict[str, List[str]]:
    """Convert all image/trimap pairs under ``src`` into a seeded split.

    Args:
        src: folder holding ``images/`` and ``annotations/trimaps/``.
        out_dir: root of the mmseg layout.
        seed: seed of the random split.
        ratios: train / val / test fractions.
        nproc: worker processes (1: convert in this process).

    Returns:
        dict split -> sorted image names.
    """
    img_root = osp.join(src, 'images')
    tri_root = osp.join(src, 'annotations', 'trimaps')
    images = _stems(img_root, ('.jpg', '.jpeg'))
    trimaps = _stems(tri_root, ('.png', ))
    names = sorted(set(images) & set(trimaps))
    if not names:
        raise FileNotFoundError(f'no image/trimap pairs under {src!r}')
    unpaired = len(images) + len(trimaps) - 2 * len(names)
    splits = seeded_split(names, ratios, seed)
    jobs = [(osp.join(img_root, images[n]), osp.join(tri_root, trimaps[n]),
             split, n, out_dir)
            for split, split_names in splits.items() for n in split_names]
    if nproc > 1:
        with ProcessPoolExecutor(nproc) as pool:
            list(pool.map(_convert_one, jobs, chunksize=16))
    else:
        for job in jobs:
            _convert_one(job)
    write_split_lists(out_dir, splits)
    sizes = ', '.join(f'{k} {len(v)}' for k, v in splits.items())
    print(f'Oxford Pet: {len(names)} pairs ({sizes}); {unpaired} files '
          f'without a partner skipped; written to {out_dir}')
    return splits
