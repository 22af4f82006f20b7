"""The few fixes the OpenMMLab stack needs, applied in the plugin at import.

Nothing in site-packages is edited; each fix wraps one mmengine entry point and
is a no-op where the stack already behaves.

1. ``mmseg_longtail::`` config scope: mmengine only resolves ``pkg::path``
   bases for packages listed in its ``MODULE2PACKAGE`` table, and finds their
   shipped configs under ``<package>/.mim/configs``. We add ourselves to the
   table and locate the package by its import spec, which also works for
   PEP 660 editable installs (where the distribution's location is
   site-packages, not the source tree). The top-level ``mmseg_longtail_scope``
   module does it; its ``.pth`` start-up hook does it before any config is
   parsed, so tools that never import the plugin (mmseg's ``tools/train.py``)
   resolve the scope too. Building what such bases define needs the
   ``mmseg_longtail`` registry nodes (``mmseg_longtail/registry.py``).
2. ``--resume`` on torch >= 2.6: ``torch.load`` defaults to
   ``weights_only=True`` there, which rejects the message-hub / numpy objects
   that mmengine stores in its own checkpoints. Local files (checkpoints a
   user or the runner wrote) are loaded with ``weights_only=False``, exactly
   as on torch < 2.6; ``http(s)://`` and model-zoo downloads keep torch's safe
   default.
3. Multi-process training without CUDA: mmengine's ``init_dist`` calls
   ``torch.cuda.set_device`` unconditionally, and its default DDP wrapper
   passes ``device_ids=[LOCAL_RANK]``, both of which fail on CPU. Without CUDA
   we initialise a gloo process group from the launcher's environment
   (torchrun or SLURM) and wrap with ``device_ids=None``. SyncBN layers (the
   default norm of mmseg's model configs) only run on GPUs, so there they
   become plain BN, with a warning: batch statistics are then per process.
   With CUDA nothing changes (NCCL, one device per process, SyncBN).
   Neither mmengine nor mmseg's tools destroy the process group; a gloo
   process that reaches interpreter shutdown with it alive can abort there
   ("terminate called without an active exception", SIGABRT: rare, seen
   in two CI runs of the test suite), so the gloo group is destroyed by an
   ``atexit`` handler while the interpreter is still whole. The handler
   first collects garbage: the runner's DDP wrapper, which holds the group,
   sits in reference cycles, and until that is freed
   ``destroy_process_group`` only drops the group from torch's tables while
   its gloo threads keep running.
4. Build-time class-count check: mmseg's ``BaseDecodeHead`` builds its losses
   without telling them ``num_classes``. After a head is built, every loss
   that has ``check_num_classes`` (the count-based long-tail losses) is
   checked against the head's ``num_classes``, so a wrong-length
   ``class_counts`` fails when the model is built, not at the first step.
5. File names in loading errors: a corrupt label PNG fails inside PIL
   (``OSError: image file is truncated``, ``cannot identify image file
   <_io.BytesIO ...>``) and mmseg's ``LoadAnnotations`` / mmcv's
   ``LoadImageFromFile`` (with a non-cv2 backend) pass that on without the
   file, in training and in the class-statistics tool alike. Their
   ``transform`` is wrapped to re-raise the same exception type with the
   file's path in front (chained to the original). Done here rather than
   with new registered loaders so that every pipeline, mmseg's stock ones
   included, names the file without a config change.
6. Atomic checkpoints: mmengine writes ``iter_<N>.pth`` in place, so a job
   killed (or preempted) while writing leaves a truncated file under the
   final name. Local checkpoints are written to a temporary name in the same
   folder, flushed to disk and renamed: the file under the final name is
   always complete.
"""
import atexit
import datetime
import functools
import gc
import logging
import os
import os.path as osp
import subprocess
from typing import Optional

import torch
import torch.distributed as torch_dist
from mmengine.runner import checkpoint as ckpt_module
from mmengine.runner import runner as runner_module

from mmseg_longtail_scope import register_config_scope

_PATCHED = '_mmseg_longtail_patched'


# --------------------------------------------------------------------- 1. scope
def _register_config_scope() -> None:
    # the start-up hook installed with the package does the same before any
    # config is parsed; this covers processes started without it (a source
    # checkout on PYTHONPATH, an install made before the hook existed)
    register_config_scope()


# -------------------------------------------------------------------- 2. resume
def load_from_local(filename: str, map_location=None):
    """Load a local checkpoint the way torch < 2.6 did (full unpickling).

    Only for local paths: the user or the runner chose the file. Remote
    checkpoints go through mmengine's http loader and keep torch's default.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return torch.load(filename, map_location=map_location, weights_only=False)


def _patch_local_checkpoint_loader() -> None:
    loader = ckpt_module.CheckpointLoader
    if getattr(loader._schemes.get(''), _PATCHED, False):
        return
    setattr(load_from_local, _PATCHED, True)
    loader.register_scheme(prefixes='', loader=load_from_local, force=True)


# ------------------------------------------------------------------ 3. CPU DDP
def _env_from_slurm() -> None:
    """Fill torch's rendezvous variables from SLURM's, as mmengine does."""
    os.environ.setdefault('RANK', os.environ['SLURM_PROCID'])
    os.environ.setdefault('WORLD_SIZE', os.environ['SLURM_NTASKS'])
    os.environ.setdefault('LOCAL_RANK', os.environ.get('SLURM_LOCALID', '0'))
    os.environ.setdefault('MASTER_PORT', '29500')
    if 'MASTER_ADDR' not in os.environ:
        node_list = os.environ['SLURM_NODELIST']
        os.environ['MASTER_ADDR'] = subprocess.getoutput(
            f'scontrol show hostname {node_list} | head -n1')


def init_cpu_dist(launcher: str, timeout: Optional[float] = None) -> None:
    """Initialise a gloo process group for ``launcher`` on a CPU machine."""
    if launcher == 'slurm':
        _env_from_slurm()
    elif launcher != 'pytorch':
        raise ValueError(f'launcher={launcher!r}: CPU training supports '
                         "'pytorch' (torchrun) and 'slurm'")
    kwargs = {}
    if timeout is not None:
        kwargs['timeout'] = datetime.timedelta(seconds=timeout)
    torch_dist.init_process_group(
        backend='gloo',
        init_method='env://',
        rank=int(os.environ['RANK']),
        world_size=int(os.environ['WORLD_SIZE']),
        **kwargs)
    atexit.register(_destroy_process_group)


def _destroy_process_group() -> None:
    # gloo's teardown is local (no collective), so this cannot wait on
    # ranks that already exited or failed.
    if not torch_dist.is_initialized():
        return
    # The DDP wrapper's reducer holds the group, and the Runner keeps the
    # wrapper in reference cycles (runner <-> hooks) that only the garbage
    # collector frees. Without this collection destroy_process_group only
    # forgets the group: its gloo threads would outlive this handler.
    gc.collect()
    torch_dist.destroy_process_group()


def _cpu_batchnorm(model: torch.nn.Module) -> torch.nn.Module:
    """SyncBN -> BN for CPU processes (torch's SyncBN needs CUDA)."""
    from mmengine.logging import print_log
    from mmengine.model import revert_sync_batchnorm
    sync = (torch.nn.SyncBatchNorm, )
    try:
        from mmcv.ops import SyncBatchNorm as MMCVSyncBN
        sync += (MMCVSyncBN, )
    except ImportError:  # mmcv without compiled ops
        pass
    if not any(isinstance(m, sync) for m in model.modules()):
        return model
    print_log(
        'CPU multi-process training: SyncBN layers converted to BN (SyncBN '
        'needs CUDA); batch statistics are computed per process.',
        logger='current', level=logging.WARNING)
    return revert_sync_batchnorm(model)


def _patch_cpu_distributed() -> None:
    original_init = runner_module.init_dist
    if not getattr(original_init, _PATCHED, False):

        @functools.wraps(original_init)
        def init_dist(launcher, backend='nccl', init_backend='torch', **kw):
            if torch.cuda.is_available() or launcher == 'mpi':
                return original_init(launcher, backend, init_backend, **kw)
            return init_cpu_dist(launcher, kw.get('timeout'))

        setattr(init_dist, _PATCHED, True)
        runner_module.init_dist = init_dist

    Runner = runner_module.Runner
    original_wrap = Runner.wrap_model
    if getattr(original_wrap, _PATCHED, False):
        return

    @functools.wraps(original_wrap)
    def wrap_model(self, model_wrapper_cfg, model):
        if self.distributed and not torch.cuda.is_available():
            model = _cpu_batchnorm(model)
            if model_wrapper_cfg is None:
                # mmengine's default passes device_ids=[LOCAL_RANK]: GPU
                # only.
                model_wrapper_cfg = dict(
                    type='MMDistributedDataParallel',
                    device_ids=None,
                    broadcast_buffers=False,
                    find_unused_parameters=self.cfg.get(
                        'find_unused_parameters', False))
        return original_wrap(self, model_wrapper_cfg, model)

    setattr(wrap_model, _PATCHED, True)
    Runner.wrap_model = wrap_model


# ------------------------------------------------- 4. class-count check
def check_head_losses(head) -> None:
    """Check each loss of ``head`` that knows its class counts."""
    losses = getattr(head, 'loss_decode', None)
    if losses is None:
        return
    if isinstance(losses, torch.nn.Module) and not isinstance(
            losses, torch.nn.ModuleList):
        losses = [losses]
    for loss in losses:
        check = getattr(loss, 'check_num_classes', None)
        if callable(check):
            check(head.num_classes)


def _patch_decode_head_check() -> None:
    from mmseg.models.decode_heads.decode_head import BaseDecodeHead
    original = BaseDecodeHead.__init__
    if getattr(original, _PATCHED, False):
        return

    @functools.wraps(original)
    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        check_head_losses(self)

    setattr(__init__, _PATCHED, True)
    BaseDecodeHead.__init__ = __init__


# ------------------------------------------------ 5. file names in errors
def with_file_name(error: Exception, path: str) -> Exception:
    """``error`` as the same exception type with ``path`` in front of its
    message (a RuntimeError where the type takes no single message)."""
    message = f'{path}: {type(error).__name__}: {error}'
    try:
        named = type(error)(message)
    except Exception:  # exception types with other constructor arguments
        named = RuntimeError(message)
    return named


def _name_files_in_errors(cls, path_key: str) -> None:
    original = cls.transform
    if getattr(original, _PATCHED, False):
        return

    @functools.wraps(original)
    def transform(self, results):
        try:
            return original(self, results)
        except Exception as error:
            path = results.get(path_key)
            if path is None or str(path) in str(error):
                raise  # nothing to add (mmcv's own assert names the file)
            raise with_file_name(error, str(path)) from error

    setattr(transform, _PATCHED, True)
    cls.transform = transform


def _patch_loader_errors() -> None:
    from mmcv.transforms import LoadImageFromFile
    from mmseg.datasets.transforms import LoadAnnotations
    _name_files_in_errors(LoadImageFromFile, 'img_path')
    _name_files_in_errors(LoadAnnotations, 'seg_map_path')


# ----------------------------------------------------- 6. atomic checkpoints
def _patch_atomic_checkpoint_save() -> None:
    original = runner_module.save_checkpoint
    if getattr(original, _PATCHED, False):
        return

    @functools.wraps(original)
    def save_checkpoint(checkpoint, filename, *args, **kwargs):
        filename = str(filename)
        if '://' in filename:  # remote storage: its backend decides
            return original(checkpoint, filename, *args, **kwargs)
        tmp = f'{filename}.tmp{os.getpid()}'
        try:
            original(checkpoint, tmp, *args, **kwargs)
            with open(tmp, 'rb') as f:
                os.fsync(f.fileno())
            os.replace(tmp, filename)
        finally:
            if osp.exists(tmp):
                os.remove(tmp)

    setattr(save_checkpoint, _PATCHED, True)
    runner_module.save_checkpoint = save_checkpoint


def apply() -> None:
    """Apply every fix (idempotent; done on ``import mmseg_longtail``)."""
    _register_config_scope()
    _patch_local_checkpoint_loader()
    _patch_cpu_distributed()
    _patch_decode_head_check()
    _patch_loader_errors()
    _patch_atomic_checkpoint_save()


apply()
