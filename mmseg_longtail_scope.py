"""Makes the ``mmseg_longtail::`` config scope known to mmengine in every
process, before a config is parsed.

mmengine resolves ``_base_ = ['pkg::path']`` only for packages in its
``MODULE2PACKAGE`` table, and it resolves bases while parsing, before a
config's ``custom_imports`` are imported. So a tool that does not import the
plugin first (mmseg's own ``tools/train.py``) stops at ``AssertionError:
mmengine does not support to load mmseg_longtail config``. The package
therefore installs ``mmseg_longtail_scope.pth`` beside itself in
site-packages (see ``setup.py``); at interpreter start-up it calls
:func:`install`, which waits for ``mmengine.config.config`` to be imported and
then registers the scope. This module imports only the standard library, so
a process that never imports mmengine pays nothing but a finder lookup.

Kept outside the ``mmseg_longtail`` package on purpose: importing anything
inside it imports the package, which imports torch and mmseg.
"""
import importlib
import importlib.util
import os.path as osp
import sys

PACKAGE = 'mmseg_longtail'
DISTRIBUTION = 'mmseg-longtail'
CONFIG_MODULE = 'mmengine.config.config'
_PATCHED = '_mmseg_longtail_patched'


def register_config_scope() -> None:
    """Add the scope to mmengine's table and locate the package by its import
    spec (idempotent).

    mmengine finds a package's shipped configs under
    ``<get_installed_path(dist)>/.mim/configs``; for a PEP 660 editable
    install that path is site-packages, not the source tree, so the package
    is located by ``importlib.util.find_spec`` instead (which does not import
    it).
    """
    cfg_utils = importlib.import_module('mmengine.config.utils')
    cfg_module = importlib.import_module(CONFIG_MODULE)
    cfg_utils.MODULE2PACKAGE.setdefault(PACKAGE, DISTRIBUTION)
    original = cfg_module.get_installed_path
    if getattr(original, _PATCHED, False):
        return

    def get_installed_path(package: str) -> str:
        if package in (PACKAGE, DISTRIBUTION):
            spec = importlib.util.find_spec(PACKAGE)
            if spec is not None and spec.origin is not None:
                return osp.dirname(spec.origin)
        return original(package)

    get_installed_path.__doc__ = original.__doc__
    setattr(get_installed_path, _PATCHED, True)
    cfg_module.get_installed_path = get_installed_path


class _ScopeFinder:
    """Meta-path finder that only watches ``mmengine.config.config``: it
    lets the other finders find it and registers the scope right after the
    module has run."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != CONFIG_MODULE:
            return None
        spec = None
        for finder in sys.meta_path:
            find = getattr(finder, 'find_spec', None)
            if finder is self or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                break
        if spec is None or not hasattr(spec.loader, 'exec_module'):
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_register(module):
            exec_module(module)
            register_config_scope()
            if self in sys.meta_path:
                sys.meta_path.remove(self)

        # the loader is this spec's own instance: nothing else is affected
        spec.loader.exec_module = exec_and_register
        return spec


def install() -> None:
    """Register the scope now if mmengine's config module is loaded, else
    as soon as it is (what the ``.pth`` file calls at start-up)."""
    if CONFIG_MODULE in sys.modules:
        register_config_scope()
    elif not any(isinstance(f, _ScopeFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _ScopeFinder())
