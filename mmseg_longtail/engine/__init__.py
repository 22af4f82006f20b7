"""Training-time behaviour as registered components: hooks (mmseg's
``HOOKS``), the checkpoint-safe runner (``RUNNERS``) and the CPU DDP
wrapper (``MODEL_WRAPPERS``)."""
from .checkpoint import checkpoint_safe_globals
from .cpu_distributed import CPUDistributedDataParallel, setup_cpu_distributed
from .cpu_threads import set_cpu_threads
from .hooks import (DeferredReweightHook, MetricWorkDirHook, NonFiniteError,
                    NonFiniteGuardHook, head_losses)
from .runner import SafeCheckpointRunner

__all__ = [
    'CPUDistributedDataParallel', 'DeferredReweightHook', 'head_losses',
    'MetricWorkDirHook', 'NonFiniteGuardHook', 'NonFiniteError',
    'SafeCheckpointRunner', 'checkpoint_safe_globals', 'set_cpu_threads',
    'setup_cpu_distributed'
]
