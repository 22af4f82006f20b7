"""Multi-process training without CUDA: a gloo process group and a DDP
wrapper for CPU processes, applied by this repository's ``tools/train.py``
and ``tools/test.py`` (:func:`setup_cpu_distributed`) when no GPU is
present. With CUDA nothing here runs: mmengine initialises NCCL, one device
per process, and SyncBN stays SyncBN.

mmengine's ``init_dist`` calls ``torch.cuda.set_device`` and its default DDP
wrapper passes ``device_ids=[LOCAL_RANK]``, both of which fail on CPU. The
tools therefore initialise a gloo group from the launcher's environment
(torchrun or SLURM) before the Runner exists (the Runner then skips its own
``init_dist``) and select :class:`CPUDistributedDataParallel` as the model
wrapper. SyncBN layers (the default norm of mmseg's model configs) only run
on GPUs, so the wrapper turns them into BN, with a warning: batch statistics
are then per process.
"""
import atexit
import datetime
import gc
import logging
import os
import subprocess
from typing import Optional

import torch
import torch.distributed as torch_dist
from mmengine.dist import is_distributed
from mmengine.logging import print_log
from mmengine.model import MMDistributedDataParallel, revert_sync_batchnorm
from mmseg.registry import MODEL_WRAPPERS


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
    """Destroy the gloo group while the interpreter is still whole.

    Neither mmengine nor mmseg's tools destroy it, and a gloo process that
    reaches interpreter shutdown with its group alive can abort there
    ("terminate called without an active exception"). gloo's teardown is
    local (no collective), so this cannot wait on ranks that already
    exited. The DDP wrapper's reducer holds the group and the Runner keeps
    the wrapper in reference cycles (runner <-> hooks), so garbage is
    collected first; otherwise the group would only be forgotten while its
    threads keep running.
    """
    if not torch_dist.is_initialized():
        return
    gc.collect()
    torch_dist.destroy_process_group()


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """mmengine's DDP wrapper for CPU processes: no ``device_ids`` (the
    Runner's default of ``[LOCAL_RANK]`` names a GPU) and SyncBN layers
    turned into BN, with a warning."""

    def __init__(self, module: torch.nn.Module, device_ids=None,
                 **kwargs) -> None:
        super().__init__(module=_cpu_batchnorm(module), device_ids=None,
                         **kwargs)


def _cpu_batchnorm(model: torch.nn.Module) -> torch.nn.Module:
    """SyncBN -> BN (torch's and mmcv's SyncBN need CUDA)."""
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


def setup_cpu_distributed(cfg, launcher: str) -> bool:
    """Prepare ``cfg`` for multi-process training on CPU, if that is what
    is asked: ``launcher`` other than ``'none'`` and no CUDA device. Then
    the gloo group is initialised now and ``cfg.model_wrapper_cfg`` selects
    :class:`CPUDistributedDataParallel` (unless the config names a wrapper
    itself). Returns whether it did anything; with CUDA it never does."""
    if launcher in ('none', 'mpi', None) or torch.cuda.is_available():
        return False  # mmengine's own set-up
    if not is_distributed():
        dist_cfg = cfg.get('env_cfg', {}).get('dist_cfg', {}) or {}
        init_cpu_dist(launcher, dist_cfg.get('timeout'))
    if cfg.get('model_wrapper_cfg') is None:
        # scoped: mmengine's Runner looks the type up in its root registry
        cfg.model_wrapper_cfg = dict(
            type='mmseg.CPUDistributedDataParallel',
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    return True
