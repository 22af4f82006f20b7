"""Tiny on-disk fixtures in each data set's real layout."""
from pathlib import Path

import numpy as np
import pytest
from mmengine.registry import init_default_scope
from PIL import Image


def write_png(path, array):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)


def write_jpg(path, array):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(
        path, quality=95)


def random_label(rng, shape, values):
    return rng.choice(np.asarray(values), size=shape).astype(np.uint8)


def make_layout(kind: str, root: Path, seed: int = 0, hw=(24, 32)) -> dict:
    """Write 2 samples per split; return {split: [(img, ann, label)]}."""
    rng = np.random.default_rng(seed)
    h, w = hw
    out = {}

    def sample(img_path, ann_path, values, jpg=True):
        img = rng.integers(0, 256, (h, w, 3))
        label = random_label(rng, (h, w), values)
        (write_jpg if jpg else write_png)(img_path, img)
        write_png(ann_path, label)
        return img_path, ann_path, label

    for split in ('train', 'val', 'test'):
        items = []
        for i in range(2):
            name = f'{split}{i:02d}'
            if kind == 'camvid':
                items.append(sample(
                    root / 'img_dir' / split / f'{name}.jpg',
                    root / 'ann_dir' / split / f'{name}.png', range(12)))
            elif kind == 'oxford_pet':
                items.append(sample(
                    root / 'img_dir' / split / f'{name}.jpg',
                    root / 'ann_dir' / split / f'{name}.png', range(3)))
            elif kind == 'nyu_v2':
                img, ann40, label40 = sample(
                    root / 'img_dir' / split / f'{name}.png',
                    root / 'ann_dir40' / split / f'{name}.png',
                    list(range(40)) + [255], jpg=False)
                label13 = np.where(label40 == 255, 255, label40 % 13)
                write_png(root / 'ann_dir13' / split / f'{name}.png', label13)
                items.append((img, ann40, label40))
            elif kind == 'cityscapes':
                city = 'aachen'
                stem = f'{city}_{i:06d}_{ord(split[0]):06d}'
                items.append(sample(
                    root / 'leftImg8bit' / split / city /
                    f'{stem}_leftImg8bit.png', root / 'gtFine' / split / city /
                    f'{stem}_gtFine_labelTrainIds.png',
                    list(range(19)) + [255], jpg=False))
            else:
                raise ValueError(kind)
        out[split] = items
    return out


@pytest.fixture
def dataset_layout():
    """``make_layout(kind, root)``: tiny fixture files in a real layout."""
    return make_layout


@pytest.fixture(autouse=True)
def mmseg_scope():
    """Pipelines name mmseg transforms (RandomCrop, PackSegInputs, ...)."""
    init_default_scope('mmseg')
