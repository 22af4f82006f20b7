"""Data-pipeline transforms of the plugin (registered in mmseg's
``TRANSFORMS``)."""
from typing import Dict

import numpy as np
from mmcv.transforms import BaseTransform, LoadImageFromFile
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import TRANSFORMS

from mmseg_longtail.utils.errors import with_file_name


def _transform_naming_file(load, results: Dict, path_key: str) -> Dict:
    """``load(results)``, re-raising a failure with the file's path in
    front (chained to the original) unless its message already names it."""
    try:
        return load(results)
    except Exception as error:
        path = results.get(path_key)
        if path is None or str(path) in str(error):
            raise  # nothing to add (mmcv's own assert names the file)
        raise with_file_name(error, str(path)) from error


@TRANSFORMS.register_module()
class LoadImageNamingFile(LoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` whose errors name the image file.

    A corrupt file fails inside the decoder (PIL: ``image file is
    truncated``, ``cannot identify image file <_io.BytesIO ...>``) with no
    path; here the same exception type is raised with ``img_path`` in
    front. Arguments as ``LoadImageFromFile``; the plugin's data set bases
    use it.
    """

    def transform(self, results: Dict) -> Dict:
        return _transform_naming_file(super().transform, results,
                                      'img_path')


@TRANSFORMS.register_module()
class LoadAnnotationsNamingFile(LoadAnnotations):
    """mmseg's ``LoadAnnotations`` whose errors name the label file
    (``seg_map_path``), as :class:`LoadImageNamingFile`."""

    def transform(self, results: Dict) -> Dict:
        return _transform_naming_file(super().transform, results,
                                      'seg_map_path')


def label_range_error(label: np.ndarray, num_classes: int,
                      ignore_index: int, source: str):
    """A ValueError naming ``source`` and the values of ``label`` outside
    ``0..num_classes-1`` that are not ``ignore_index``, or None when there
    are none.

    One vectorised comparison pass over the label map (about 1 ms for a
    2-megapixel Cityscapes label on one CPU core); the offending values are
    only collected when there are some.
    """
    label = np.asarray(label)
    bad = label >= num_classes
    if np.issubdtype(label.dtype, np.signedinteger):
        bad |= label < 0
    bad &= label != ignore_index
    if not bad.any():
        return None
    values = np.unique(label[bad])
    shown = ', '.join(str(v) for v in values[:10].tolist())
    more = f' and {values.size - 10} more' if values.size > 10 else ''
    return ValueError(
        f'{source}: label values {shown}{more} ({int(bad.sum())} pixels) '
        f'are outside the class ids 0..{num_classes - 1} and are not '
        f'ignore_index={ignore_index}. The loss would fail on them in '
        'training and the metric would drop them silently; fix the label '
        'file (or the data set\'s label_map / reduce_zero_label), or '
        'num_classes / ignore_index.')


@TRANSFORMS.register_module()
class CheckLabelRange(BaseTransform):
    """Refuse label maps with values that are neither a class id nor
    ``ignore_index``; the error names the label file and the values.

    Without it such a value reaches the loss (``IndexError: Target 12 is
    out of bounds`` naming no file, an opaque device-side assert on a GPU)
    or, at validation, mmseg's metric, which drops it silently. Place it
    right after ``LoadAnnotations`` (the data set bases of this package do):
    it sees the labels as the model will, ``label_map`` and
    ``reduce_zero_label`` applied.

    Required keys: ``gt_seg_map``. Optional: ``seg_map_path`` (named in the
    error). Modified keys: none.

    Args:
        num_classes (int): number of classes C; valid ids are ``0..C-1``.
        ignore_index (int): the label value of unlabelled pixels.
            Default: 255.
    """

    def __init__(self, num_classes: int, ignore_index: int = 255) -> None:
        if isinstance(num_classes, bool) or not isinstance(
                num_classes, int) or num_classes < 1:
            raise ValueError('CheckLabelRange: num_classes must be an int '
                             f'>= 1, got {num_classes!r}')
        if isinstance(ignore_index, bool) or not isinstance(
                ignore_index, int):
            raise ValueError('CheckLabelRange: ignore_index must be an '
                             f'int, got {ignore_index!r}')
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def transform(self, results: Dict) -> Dict:
        if 'gt_seg_map' not in results:
            raise KeyError('CheckLabelRange found no gt_seg_map: place it '
                           'after LoadAnnotations in the pipeline')
        source = results.get('seg_map_path') or 'label map'
        error = label_range_error(results['gt_seg_map'], self.num_classes,
                                  self.ignore_index, str(source))
        if error is not None:
            raise error
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index})')
