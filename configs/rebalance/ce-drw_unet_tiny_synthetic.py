# Deferred re-weighting (Cao et al., NeurIPS 2019) for any class-weighted
# loss: plain CE for iterations 0-199, then class-balanced weights (effective
# number, beta='median' separates pixel counts) for the last 100. For a
# generator instead: class_weight='work_dirs/synthetic_stats.json:mfb'.
# The switch follows the runner's iteration, so --resume keeps it.
_base_ = ['../quickstart/unet_tiny_synthetic_ce.py']
model = dict(decode_head=dict(loss_decode=dict(
    _delete_=True, type='SoftmaxFocalLoss', gamma=0.0, avg_non_ignore=True)))
custom_hooks = _base_.custom_hooks + [
    dict(type='DeferredReweightHook', start_iter=200,
         class_counts='work_dirs/synthetic_stats.json', beta='median')
]
