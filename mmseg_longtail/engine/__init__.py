"""Training-time behaviour as registered hooks (mmseg's ``HOOKS``)."""
from .hooks import (DeferredReweightHook, NonFiniteError, NonFiniteGuardHook,
                    head_losses)

__all__ = [
    'DeferredReweightHook', 'head_losses', 'NonFiniteGuardHook',
    'NonFiniteError'
]
