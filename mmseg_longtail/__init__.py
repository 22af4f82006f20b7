"""mmseg-longtail: long-tailed semantic segmentation for MMSegmentation 1.x.

Importing the package registers its modules into mmseg's registries
(MODELS, DATASETS, TRANSFORMS, METRICS, HOOKS, RUNNERS, MODEL_WRAPPERS) and
does nothing else, so a config reaches them with::

    custom_imports = dict(
        imports=['mmseg_longtail'], allow_failed_imports=False)
"""
from .version import __version__
from . import datasets, engine, evaluation, models, utils  # noqa: F401,E402
# registry nodes of the ``mmseg_longtail`` scope (bases taken with
# ``mmseg_longtail::`` build in that scope)
from . import registry  # noqa: F401,E402

__all__ = [
    '__version__', 'datasets', 'engine', 'evaluation', 'models', 'utils'
]
