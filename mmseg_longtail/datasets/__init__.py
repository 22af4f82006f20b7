from .base import LongTailSegDataset
from .camvid import CamVidDataset
from .class_sampling import (RareClassSampleDataset, RepeatFactorDataset,
                             lvis_repeat_factors, present_classes,
                             rcs_class_probabilities)
from .nyu_v2 import NYUv2Dataset, NYUv2Dataset13
from .oxford_pet import OxfordPetDataset
from .synthetic import SyntheticLongTailDataset
from .transforms import (CheckLabelRange, LoadAnnotationsNamingFile,
                         LoadImageNamingFile)

__all__ = [
    'LongTailSegDataset', 'CamVidDataset', 'NYUv2Dataset', 'NYUv2Dataset13',
    'OxfordPetDataset', 'SyntheticLongTailDataset', 'RareClassSampleDataset',
    'RepeatFactorDataset', 'lvis_repeat_factors', 'present_classes',
    'rcs_class_probabilities', 'CheckLabelRange', 'LoadAnnotationsNamingFile',
    'LoadImageNamingFile'
]
