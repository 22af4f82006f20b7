from .base import LongTailSegDataset
from .camvid import CamVidDataset
from .nyu_v2 import NYUv2Dataset, NYUv2Dataset13
from .oxford_pet import OxfordPetDataset
from .synthetic import SyntheticLongTailDataset

__all__ = [
    'LongTailSegDataset', 'CamVidDataset', 'NYUv2Dataset', 'NYUv2Dataset13',
    'OxfordPetDataset', 'SyntheticLongTailDataset'
]
