"""Registry nodes of the ``mmseg_longtail`` scope.

The plugin registers its modules straight into mmseg's registries, so
``default_scope='mmseg'`` finds them. Bases taken with the config scope
(``_base_ = ['mmseg_longtail::...']``) are another matter: mmengine marks every
dict of such a base with ``_scope_='mmseg_longtail'`` and, when it builds one,
imports ``mmseg_longtail.registry`` and looks for a registry node of that
scope under mmengine's root. Without this module it warns "mmseg_longtail is
not installed" and falls back to mmengine's root registries, where neither
mmseg's nor the plugin's modules are (``KeyError: 'SyntheticLongTailDataset is
not in the mmengine::dataset registry'``).

Each node below is an empty child of the mmseg registry of the same kind:
lookups fall through to mmseg (where the plugin's modules are) and on to
mmengine, and builds use mmseg's build functions. ``locations`` imports the
plugin (and so registers its modules) the first time a node is searched.
"""
from mmengine.registry import Registry
from mmseg import registry as mmseg_registry

SCOPE = 'mmseg_longtail'
# Importing the package registers every module into mmseg's registries.
_LOCATIONS = ['mmseg_longtail']


def _child(parent: Registry) -> Registry:
    """An empty ``mmseg_longtail`` node under ``parent``."""
    # A lookup that falls through to a parent does not import the parent's
    # locations (only a node's own search does): import mmseg's modules of
    # this kind now (e.g. SegLocalVisualizer from mmseg.visualization).
    parent.import_from_location()
    return Registry(
        parent.name, parent=parent, scope=SCOPE, locations=_LOCATIONS)


RUNNERS = _child(mmseg_registry.RUNNERS)
RUNNER_CONSTRUCTORS = _child(mmseg_registry.RUNNER_CONSTRUCTORS)
LOOPS = _child(mmseg_registry.LOOPS)
HOOKS = _child(mmseg_registry.HOOKS)
DATASETS = _child(mmseg_registry.DATASETS)
DATA_SAMPLERS = _child(mmseg_registry.DATA_SAMPLERS)
TRANSFORMS = _child(mmseg_registry.TRANSFORMS)
MODELS = _child(mmseg_registry.MODELS)
MODEL_WRAPPERS = _child(mmseg_registry.MODEL_WRAPPERS)
WEIGHT_INITIALIZERS = _child(mmseg_registry.WEIGHT_INITIALIZERS)
OPTIMIZERS = _child(mmseg_registry.OPTIMIZERS)
OPTIM_WRAPPERS = _child(mmseg_registry.OPTIM_WRAPPERS)
OPTIM_WRAPPER_CONSTRUCTORS = _child(mmseg_registry.OPTIM_WRAPPER_CONSTRUCTORS)
PARAM_SCHEDULERS = _child(mmseg_registry.PARAM_SCHEDULERS)
METRICS = _child(mmseg_registry.METRICS)
EVALUATOR = _child(mmseg_registry.EVALUATOR)
TASK_UTILS = _child(mmseg_registry.TASK_UTILS)
VISUALIZERS = _child(mmseg_registry.VISUALIZERS)
VISBACKENDS = _child(mmseg_registry.VISBACKENDS)
LOG_PROCESSORS = _child(mmseg_registry.LOG_PROCESSORS)
INFERENCERS = _child(mmseg_registry.INFERENCERS)

__all__ = [
    'RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS', 'HOOKS', 'DATASETS',
    'DATA_SAMPLERS', 'TRANSFORMS', 'MODELS', 'MODEL_WRAPPERS',
    'WEIGHT_INITIALIZERS', 'OPTIMIZERS', 'OPTIM_WRAPPERS',
    'OPTIM_WRAPPER_CONSTRUCTORS', 'PARAM_SCHEDULERS', 'METRICS', 'EVALUATOR',
    'TASK_UTILS', 'VISUALIZERS', 'VISBACKENDS', 'LOG_PROCESSORS',
    'INFERENCERS'
]
