# Runtime shared by every config: mmseg's defaults + the plugin import.
custom_imports = dict(imports=['mmseg_longtail'], allow_failed_imports=False)
default_scope = 'mmseg'
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # nccl on GPUs; on CPU-only machines mmseg_longtail.compat uses gloo.
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
# Stop with a message naming the loss term, iteration and work dir when a
# loss or gradient turns NaN / inf (mmengine would train on); action='skip'
# drops such steps instead, enabled=False turns it off.
custom_hooks = [dict(type='NonFiniteGuardHook', action='stop')]
