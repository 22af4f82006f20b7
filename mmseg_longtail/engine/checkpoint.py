"""Checkpoint input and output of :class:`SafeCheckpointRunner`.

Loading: torch >= 2.6 unpickles with ``weights_only=True`` by default and
so refuses the few objects mmengine stores in its checkpoints. Instead of
turning safe loading off, :func:`checkpoint_safe_globals` allow-lists
exactly those objects for the duration of a load:

* mmengine's ``HistoryBuffer`` (the message hub's logged scalars); it
  pickles its statistics methods as ``getattr(HistoryBuffer, 'min')``, so
  the name ``builtins.getattr`` is bound to :func:`_statistics_method`, which
  returns a registered statistics method of a ``HistoryBuffer`` class and
  refuses anything else (the builtin ``getattr`` itself is never allowed);
* numpy arrays, scalars and dtypes (history buffers and meta values).

Anything else in a file, such as an object whose unpickling would run code,
fails with torch's ``UnpicklingError``. On torch < 2.6 ``torch.load``
unpickles fully by default, whatever this module does; http(s) downloads go
through ``torch.hub.load_state_dict_from_url``, which unpickles fully as
well: load only checkpoints you trust from there.

Saving: mmengine writes ``iter_<N>.pth`` in place, so a job killed while
writing leaves a truncated file under the final name. Local checkpoints are
written under a temporary name in the same folder, flushed to disk and
renamed (:func:`mmseg_longtail.utils.run_files.atomic_local_save`).
"""
import contextlib
from typing import Callable, Iterator, List, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

SafeGlobal = Union[Callable, Tuple[Callable, str]]
# what every HistoryBuffer registers when it is created
DEFAULT_STATISTICS = ('min', 'max', 'current', 'mean')


def _statistics_method(owner, name: str):
    """What a pickled ``getattr(owner, name)`` may resolve to: a statistics
    method of :class:`HistoryBuffer` (its own or one registered with
    ``HistoryBuffer.register_statistics``)."""
    if not (isinstance(owner, type) and issubclass(owner, HistoryBuffer)):
        raise torch.serialization.pickle.UnpicklingError(
            f'checkpoint asks for getattr({owner!r}, {name!r}); only '
            'HistoryBuffer statistics methods are allowed')
    registered = owner._statistics_methods  # filled by the first instance
    if name in registered:
        return registered[name]
    if name in DEFAULT_STATISTICS:
        return getattr(owner, name)
    raise torch.serialization.pickle.UnpicklingError(
        f'checkpoint asks for HistoryBuffer.{name}, which is not a '
        'registered statistics method')


def _numpy_globals() -> List[SafeGlobal]:
    """numpy's array, scalar and dtype reconstructors, under the module
    names of numpy 1.x (``numpy.core``) and 2.x (``numpy._core``), since a
    checkpoint holds the names of the numpy that wrote it."""
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray
    found: List[SafeGlobal] = [np.ndarray, np.dtype]
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        found.append((multiarray._reconstruct, f'{module}._reconstruct'))
        found.append((multiarray.scalar, f'{module}.scalar'))
    dtypes = getattr(np, 'dtypes', None)  # numpy >= 1.25
    if dtypes is not None:
        found += [
            getattr(dtypes, name) for name in dir(dtypes)
            if name.endswith('DType')
        ]
    return found


def mmengine_checkpoint_globals() -> List[SafeGlobal]:
    """The allow-list of :func:`checkpoint_safe_globals`."""
    return [HistoryBuffer, (_statistics_method, 'builtins.getattr')
            ] + _numpy_globals()


@contextlib.contextmanager
def checkpoint_safe_globals() -> Iterator[None]:
    """Within the block, torch's safe loader also accepts what mmengine's
    own checkpoints hold (see the module docstring); nothing else changes.

    Use it where a checkpoint is loaded outside :class:`SafeCheckpointRunner`,
    e.g. ``with checkpoint_safe_globals(): init_model(cfg, ckpt)``.
    """
    safe_globals = getattr(torch.serialization, 'safe_globals', None)
    if safe_globals is None:  # torch < 2.5: no allow-list to extend
        yield
        return
    with safe_globals(mmengine_checkpoint_globals()):
        yield


def is_local(path: str, backend_args: Optional[dict] = None) -> bool:
    """A plain file-system path (no ``scheme://``, no storage backend)."""
    return '://' not in str(path) and not backend_args
