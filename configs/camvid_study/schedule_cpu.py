# The CPU study's schedule: the paper's optimiser (SGD, momentum 0.9,
# weight decay 5e-4, poly decay 0.9) shortened to a few hundred iterations,
# with a larger learning rate because the models start from scratch and
# must get somewhere in minutes. Validation once, at the end; a checkpoint
# half-way so an interrupted run resumes (tools/grid.py).
_base_ = ['../_base_/schedules/schedule_30k.py']
max_iters = 400
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
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=25),
    checkpoint=dict(interval=max_iters // 2, max_keep_ckpts=1))
