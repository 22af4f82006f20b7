"""Shared behaviour of the comparison data sets (Oxford Pet, NYUv2, CamVid),
registered itself for one's own data (``metainfo=dict(classes=...)``, as
``configs/own_data/data.py``).

:class:`LongTailSegDataset` is mmseg's :class:`BaseSegDataset` plus the
things the long-tail tooling relies on:

* ``UNLABELLED_IDS``: label ids stored in the files that are not classes
  (e.g. CamVid's 11 "Unlabelled"). They are added to the data set's
  ``label_map`` and so become ``ignore_index`` in mmseg's own
  ``LoadAnnotations``: the model, the loss, the metric and the class
  statistics all see 255, and nothing else has to know about the raw id.
* :meth:`get_gt_seg_map`: the ground truth of one sample exactly as the
  model sees it (class ids ``0..K-1`` and ``ignore_index``), read through
  the pipeline's own ``LoadAnnotations``. ``class_stats.py CONFIG`` uses it.
* a clear error, naming the field, when the image folder is missing or
  empty (mmseg silently builds an empty data set).
* ``get_cat_ids(idx)`` (the classes in the label map), so mmengine's
  ``ClassBalancedDataset`` wraps these data sets.
* the label check: a :class:`~mmseg_longtail.datasets.transforms.
  CheckLabelRange` right after each ``LoadAnnotations`` of the pipeline,
  added where a config's pipeline lacks it, so a label value that is
  neither a class id nor ``ignore_index`` fails naming the file whatever
  the pipeline.
"""
import copy
import os.path as osp
from typing import Dict, Optional, Sequence

import numpy as np
from mmseg.datasets import BaseSegDataset
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import DATASETS

from .class_sampling import CatIdsMixin
from .transforms import CheckLabelRange


@DATASETS.register_module()
class LongTailSegDataset(CatIdsMixin, BaseSegDataset):
    """BaseSegDataset with unlabelled-id handling and ``get_gt_seg_map``.

    Args:
        lazy_init (bool): As in :class:`BaseSegDataset`.
        **kwargs: Passed to :class:`BaseSegDataset`.
    """
    #: Raw label ids that are mapped to ``ignore_index`` on loading.
    UNLABELLED_IDS: Sequence[int] = ()

    def __init__(self, lazy_init: bool = False, **kwargs) -> None:
        # Build lazily first so the unlabelled ids can join the label map
        # before ``load_data_list`` copies it into every sample.
        super().__init__(lazy_init=True, **kwargs)
        self.label_map = self._with_unlabelled(self.label_map)
        self._metainfo['label_map'] = self.label_map
        self._check_labels_after_loading()
        if not lazy_init:
            self.full_init()

    def _check_labels_after_loading(self) -> None:
        """Put a CheckLabelRange after every LoadAnnotations of the
        pipeline that is not followed by one."""
        transforms = getattr(self.pipeline, 'transforms', None)
        if transforms is None:
            return
        check = CheckLabelRange(num_classes=len(self.metainfo['classes']),
                                ignore_index=self.ignore_index)
        for i in reversed(range(len(transforms))):
            nxt = transforms[i + 1] if i + 1 < len(transforms) else None
            if isinstance(transforms[i], LoadAnnotations) and \
                    not isinstance(nxt, CheckLabelRange):
                transforms.insert(i + 1, check)

    def _with_unlabelled(self, label_map: Optional[Dict[int, int]]
                         ) -> Optional[Dict[int, int]]:
        if not self.UNLABELLED_IDS:
            return label_map
        merged = dict(label_map or {})
        for raw_id in self.UNLABELLED_IDS:
            merged[int(raw_id)] = self.ignore_index
        return merged

    def load_data_list(self) -> list:
        img_dir = self.data_prefix.get('img_path', '')
        name = type(self).__name__
        if not self.ann_file and not osp.isdir(img_dir):
            raise FileNotFoundError(
                f'{name}: data_prefix.img_path {img_dir!r} is not a '
                'directory; check data_root / data_prefix (see '
                'docs/datasets.md for the layout and converters)')
        data_list = super().load_data_list()
        if not data_list:
            raise FileNotFoundError(
                f'{name}: no *{self.img_suffix} images under '
                f'data_prefix.img_path {img_dir!r}; check img_suffix and '
                'the converter output')
        return data_list

    def _annotation_loader(self) -> LoadAnnotations:
        """The pipeline's ``LoadAnnotations`` (same decoding), else a default
        one."""
        for transform in getattr(self.pipeline, 'transforms', []):
            if isinstance(transform, LoadAnnotations):
                return copy.copy(transform)
        return LoadAnnotations(backend_args=self.backend_args)

    def get_gt_seg_map(self, idx: int) -> np.ndarray:
        """Ground-truth label map of sample ``idx`` as the model sees it.

        Values are class ids ``0..K-1`` or ``ignore_index`` (unlabelled ids,
        ``reduce_zero_label`` and custom-class ``label_map`` applied), at the
        file's full resolution, before any augmentation.

        Returns:
            np.ndarray: (H, W) uint8 array.
        """
        info = self.get_data_info(idx)
        if 'seg_map_path' not in info:
            raise KeyError(f'{type(self).__name__}: sample {idx} has no '
                           'seg_map_path (data_prefix.seg_map_path unset?)')
        results = dict(
            seg_map_path=info['seg_map_path'],
            reduce_zero_label=info.get('reduce_zero_label', False),
            label_map=info.get('label_map'),
            seg_fields=[])
        return self._annotation_loader()(results)['gt_seg_map']
