"""torch's thread count for training and testing on CPU, applied by this
repository's ``tools/train.py`` and ``tools/test.py``.

torch starts as many intra-op threads as the machine has cores, in every
process. With data-loader workers, or several processes per machine
(torchrun), that oversubscribes the cores: on a 2-core machine the quick
start ran at 0.245 s per iteration with torch's default and at 0.083 s with
one thread. So on a machine without CUDA each process gets the cores
available to it (its CPU affinity, which SLURM sets per task) divided by
the processes torchrun started on the node, less one core when the loader
has workers, and at least one. ``OMP_NUM_THREADS`` (or ``MKL_NUM_THREADS``),
when set, wins: torch has already read it.
"""
import os
from typing import Optional

import torch
from mmengine.logging import print_log


def available_cores() -> int:
    """Cores this process may run on."""
    if hasattr(os, 'sched_getaffinity'):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cpu_thread_count(cores: int, local_processes: int,
                     loader_workers: int) -> int:
    """Threads per process: its share of ``cores``, one core left to the
    loader when it has workers."""
    share = cores // max(local_processes, 1)
    return max(1, share - (1 if loader_workers > 0 else 0))


def set_cpu_threads(cfg, loader: str = 'train_dataloader') -> Optional[int]:
    """Set torch's thread count for a CPU run of ``cfg`` (whose ``loader``
    supplies the workers); returns it, or None where nothing was changed
    (CUDA present, or the count given by the environment)."""
    if torch.cuda.is_available():
        return None
    for var in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'):
        if os.environ.get(var):
            return None
    workers = int((cfg.get(loader) or {}).get('num_workers', 0) or 0)
    local = int(os.environ.get('LOCAL_WORLD_SIZE') or 1)
    n = cpu_thread_count(available_cores(), local, workers)
    torch.set_num_threads(n)
    print_log(f'CPU run: {n} torch thread(s) per process ({available_cores()}'
              f' cores available, {local} process(es) on this machine, '
              f'{workers} loader worker(s); OMP_NUM_THREADS overrides)',
              logger='current')
    return n
