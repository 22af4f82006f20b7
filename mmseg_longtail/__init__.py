"""mmseg-longtail: long-tailed semantic segmentation for MMSegmentation 1.x.

Importing the package registers every module into mmseg's registries (MODELS,
DATASETS, METRICS, HOOKS) and makes the ``mmseg_longtail::`` config scope
resolvable, so configs can use::

    custom_imports = dict(imports=['mmseg_longtail'], allow_failed_imports=False)
"""
from .version import __version__
from . import compat  # noqa: F401,E402  (fixes first: config scope, resume, CPU DDP)
from . import datasets, engine, evaluation, models, utils  # noqa: F401,E402
# registry nodes of the ``mmseg_longtail`` scope (bases taken with
# ``mmseg_longtail::`` build in that scope)
from . import registry  # noqa: F401,E402

__all__ = [
    '__version__', 'compat', 'datasets', 'engine', 'evaluation', 'models',
    'utils'
]
