# Runtime shared by every config: mmseg's defaults + the plugin import.
custom_imports = dict(imports=['mmseg_longtail'], allow_failed_imports=False)
default_scope = 'mmseg'
# SafeCheckpointRunner: mmengine's Runner that loads checkpoints with torch's
# safe loader (mmengine's own objects allow-listed) and writes them atomically.
# runner_type = 'Runner' turns both off.
runner_type = 'SafeCheckpointRunner'
# cudnn_benchmark=False: cuDNN's autotuner times candidate convolution
# algorithms in each process and may pick others after a resume, so a resumed
# GPU run would not be bit-exact (ExactResumeHook below; it also turns on
# cuDNN's and torch's deterministic algorithms for the run on CUDA). Set it
# to True for more GPU throughput where exact resume does not matter.
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # nccl on GPUs; without CUDA this repository's tools/train.py uses gloo.
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
tta_model = dict(type='SegTTAModel')
# NonFiniteGuardHook: stop with a message naming the loss term, iteration and
# work dir when a loss or gradient turns NaN / inf (mmengine would train on);
# action='skip' drops such steps instead. ExactResumeHook: random generators
# seeded from (seed, rank, batch index), so that a killed and resumed run ends
# with the weights of the uninterrupted one and evaluation does not change
# the trajectory. PreemptionHook: on SIGUSR1 / SIGTERM (a scheduler's warning)
# checkpoint the current iteration and exit with 75, which the SLURM wrappers
# requeue (docs/grid.md, "Preemptible runs"). MetricWorkDirHook: hands the
# run's work dir to LongTailIoUMetric, which writes its per-class records
# there. enabled=False turns any of the first three off.
custom_hooks = [
    dict(type='NonFiniteGuardHook', action='stop'),
    dict(type='ExactResumeHook'),
    dict(type='PreemptionHook'),
    dict(type='MetricWorkDirHook'),
]
