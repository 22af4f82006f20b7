from .deferred_reweight_hook import DeferredReweightHook, head_losses
from .nonfinite_guard_hook import NonFiniteError, NonFiniteGuardHook

__all__ = [
    'DeferredReweightHook', 'head_losses', 'NonFiniteGuardHook',
    'NonFiniteError'
]
