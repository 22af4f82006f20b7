from .deferred_reweight_hook import DeferredReweightHook, head_losses
from .exact_resume_hook import ExactResumeHook
from .metric_work_dir_hook import MetricWorkDirHook
from .nonfinite_guard_hook import NonFiniteError, NonFiniteGuardHook
from .preemption_hook import (PREEMPTED_EXIT_CODE, PreemptionHook,
                              TrainingPreempted)

__all__ = [
    'DeferredReweightHook', 'head_losses', 'ExactResumeHook',
    'MetricWorkDirHook', 'NonFiniteGuardHook', 'NonFiniteError',
    'PreemptionHook',
    'TrainingPreempted', 'PREEMPTED_EXIT_CODE'
]
