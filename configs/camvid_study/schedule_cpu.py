# The CPU study's schedule: the paper's optimiser (SGD, momentum 0.9,
# weight decay 5e-4, poly decay 0.9) with a larger learning rate, because
# the models start from scratch. 2400 iterations of batch 8 are 63 epochs
# of the 305 training frames left after the selection carve; sized so that
# a run fits about 15 minutes of a quiet 2-core machine (31 runs in about
# 8 hours). Issue #13's convergence rule (the selection mIoU of the last
# three of at least six evaluations within 1.0 point) is NOT met yet: CE
# (seed 0) spread 1.48 points over iterations 2000 / 2200 / 2400 with this
# schedule, 1.15 with poly power 2, and 0.43 with poly power 2 and the
# selection split on sequence 0006R0 (docs/study.md, "Sizing"): the spec
# moves to that protocol before the study's runs start. A checkpoint every 600
# iterations, so an interrupted run resumes (tools/grid.py).
_base_ = ['../_base_/schedules/schedule_30k.py']
max_iters = 2400
optimizer = dict(lr=0.05)  # merged into the base's SGD
optim_wrapper = dict(optimizer=optimizer)
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=1e-4,
        power=0.9,
        begin=0,
        end=max_iters,
        by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters // 12)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=max_iters // 4, max_keep_ckpts=1))
