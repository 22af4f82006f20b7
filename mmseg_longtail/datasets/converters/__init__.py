"""Converters from the official on-disk formats to the mmseg layout.

One module per data set; ``tools/dataset_converters/<name>.py`` is the
command line of each. Not imported by ``mmseg_longtail`` itself: the data
set classes do not need them, and NYUv2's needs h5py / scipy.
"""
from .camvid import convert_camvid
from .nyu_v2 import convert_nyu_v2
from .oxford_pet import convert_oxford_pet

__all__ = ['convert_camvid', 'convert_nyu_v2', 'convert_oxford_pet']
