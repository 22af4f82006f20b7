"""The ``mmseg_longtail::`` config scope, for tools that ask for it.

mmengine resolves ``_base_ = ['pkg::path']`` only for packages in its
``MODULE2PACKAGE`` table, while parsing, before a config's
``custom_imports`` run; it then reads ``<installed path>/.mim/configs``,
where the installed path comes from the distribution's location, which for
a PEP 660 editable install is site-packages rather than the source tree.

:func:`load_config` parses a config with the scope known: the table gains
the plugin's entry and, where mmengine's lookup of the installed path
misses the package (PEP 660 editable installs), the path is found from the
package's import spec, for the length of the parse only. This repository's
``tools/train.py`` and ``tools/test.py`` (and so the grid) parse configs
with it. Importing the plugin does not do it, and mmseg's own
``tools/train.py`` never does: configs for it take the plugin's bases by
file path and reach the plugin through ``custom_imports``.
"""
import contextlib
import importlib.util
import os.path as osp
from typing import Iterator

PACKAGE = 'mmseg_longtail'
DISTRIBUTION = 'mmseg-longtail'


def _plugin_path() -> str:
    spec = importlib.util.find_spec(PACKAGE)
    assert spec is not None and spec.origin is not None
    return osp.dirname(spec.origin)


@contextlib.contextmanager
def config_scope() -> Iterator[None]:
    """Within the block, mmengine resolves ``mmseg_longtail::`` bases;
    afterwards its table and lookup are as they were."""
    from mmengine.config import config as config_module
    from mmengine.config import utils as config_utils
    table = config_utils.MODULE2PACKAGE
    added = PACKAGE not in table
    table.setdefault(PACKAGE, DISTRIBUTION)
    lookup = config_module.get_installed_path
    try:
        found = osp.realpath(lookup(DISTRIBUTION))
    except Exception:  # not installed as a distribution (PYTHONPATH)
        found = None
    if found != osp.realpath(_plugin_path()):  # e.g. PEP 660 editable

        def get_installed_path(package: str) -> str:
            if package in (PACKAGE, DISTRIBUTION):
                return _plugin_path()
            return lookup(package)

        config_module.get_installed_path = get_installed_path
    try:
        yield
    finally:
        config_module.get_installed_path = lookup
        if added:
            table.pop(PACKAGE, None)


def load_config(path: str, **kwargs):
    """``mmengine.config.Config.fromfile(path, **kwargs)`` with the
    ``mmseg_longtail::`` scope resolvable."""
    from mmengine.config import Config
    with config_scope():
        return Config.fromfile(path, **kwargs)
