"""Oxford-IIIT Pet (Parkhi et al., CVPR 2012) as 3-class segmentation.

The trimaps become three classes: background, pet body and the uncertain
boundary band, as in the PAT paper's protocol.
"""
from mmseg.registry import DATASETS

from .base import LongTailSegDataset


@DATASETS.register_module()
class OxfordPetDataset(LongTailSegDataset):
    """Oxford-IIIT Pet trimaps as 3 classes, in the mmseg layout::

        data/oxford_pet/img_dir/{train,val,test}/NAME.jpg
        data/oxford_pet/ann_dir/{train,val,test}/NAME.png   (ids 0, 1, 2)

    Label ids are already converted by ``tools/dataset_converters/
    oxford_pet.py`` (official trimap 2 -> 0 background, 1 -> 1 pet,
    3 -> 2 boundary), so nothing is remapped on loading.

    Args:
        img_suffix (str): Defaults to '.jpg'.
        seg_map_suffix (str): Defaults to '.png'.
        **kwargs: See :class:`mmseg.datasets.BaseSegDataset`.
    """
    METAINFO = dict(
        classes=('background', 'pet', 'boundary'),
        palette=[[0, 0, 0], [128, 0, 0], [255, 255, 255]])

    def __init__(self,
                 img_suffix: str = '.jpg',
                 seg_map_suffix: str = '.png',
                 **kwargs) -> None:
        super().__init__(
            img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, **kwargs)
