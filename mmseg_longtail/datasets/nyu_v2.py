"""NYU Depth v2 labelled set (Silberman et al., ECCV 2012), semantic labels.

Two class sets of the 1449 labelled RGB-D frames (RGB used here):

* 40 classes: the mapping of Gupta et al. (CVPR 2013) from the 894 raw
  object names to 40 classes (``NYUv2Dataset``);
* 13 classes: the coarser set of Couprie et al. (ICLR 2013), as a 40 -> 13
  mapping (``NYUv2Dataset13``).

Unlabelled pixels (raw id 0) are stored as 255 by the converter.
"""
from mmseg.registry import DATASETS

from .base import LongTailSegDataset

NYU40_CLASSES = (
    'wall', 'floor', 'cabinet', 'bed', 'chair', 'sofa', 'table', 'door',
    'window', 'bookshelf', 'picture', 'counter', 'blinds', 'desk', 'shelves',
    'curtain', 'dresser', 'pillow', 'mirror', 'floor mat', 'clothes',
    'ceiling', 'books', 'refrigerator', 'television', 'paper', 'towel',
    'shower curtain', 'box', 'whiteboard', 'person', 'night stand', 'toilet',
    'sink', 'lamp', 'bathtub', 'bag', 'otherstructure', 'otherfurniture',
    'otherprop')

# Order of the ids 1..13 of the common 40 -> 13 mapping file
# (class13Mapping.mat): alphabetical.
NYU13_CLASSES = ('bed', 'books', 'ceiling', 'chair', 'floor', 'furniture',
                 'objects', 'picture', 'sofa', 'table', 'tv', 'wall',
                 'window')


@DATASETS.register_module()
class NYUv2Dataset(LongTailSegDataset):
    """NYUv2 labelled set, 40 classes, in the layout written by
    ``tools/dataset_converters/nyu_v2.py``::

        data/nyu_v2/img_dir/{train,test}/0001.png      (RGB, 640x480)
        data/nyu_v2/ann_dir40/{train,test}/0001.png    (0..39, 255)
        data/nyu_v2/ann_dir13/{train,test}/0001.png    (0..12, 255)

    (``{train,val,test}`` with the converter's ``--split random``.)
    Use :class:`NYUv2Dataset13` for the 13-class set.

    Args:
        data_prefix (dict): Defaults to ``img_dir/train`` + ``ann_dir40/
            train``.
        img_suffix (str): Defaults to '.png' (the converter stores RGB
            losslessly).
        seg_map_suffix (str): Defaults to '.png'.
        **kwargs: See :class:`mmseg.datasets.BaseSegDataset`.
    """
    METAINFO = dict(classes=NYU40_CLASSES)
    ANN_DIR = 'ann_dir40'

    def __init__(self,
                 data_prefix: dict = None,
                 img_suffix: str = '.png',
                 seg_map_suffix: str = '.png',
                 **kwargs) -> None:
        if data_prefix is None:
            data_prefix = dict(
                img_path='img_dir/train', seg_map_path=f'{self.ANN_DIR}/train')
        super().__init__(
            data_prefix=data_prefix,
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            **kwargs)


@DATASETS.register_module()
class NYUv2Dataset13(NYUv2Dataset):
    """NYUv2 labelled set, 13 classes (labels from ``ann_dir13``).

    See :class:`NYUv2Dataset` for the layout and arguments.
    """
    METAINFO = dict(classes=NYU13_CLASSES)
    ANN_DIR = 'ann_dir13'
