# A tiny BN-free U-Net (GroupNorm, no dropout) on synthetic data with no
# random augmentation and an unshuffled sampler: one process with batch 4 and
# two processes with batch 2 each see the same samples per step, so their
# loss curves agree up to the order of float reductions (test_dist_train.py).
_base_ = [
    '../../../configs/_base_/datasets/synthetic.py',
    '../../../configs/_base_/default_runtime.py',
    '../../../configs/_base_/schedules/schedule_30k.py'
]
custom_imports = dict(
    imports=['mmseg_longtail', 'tests.test_configs.data.loss_recorder_hook'],
    allow_failed_imports=False)
norm_cfg = dict(type='GN', num_groups=4, requires_grad=True)
crop_size = (32, 32)
train_dataloader = dict(
    batch_size=4,
    sampler=dict(type='InfiniteSampler', shuffle=False),
    dataset=dict(
        img_size=crop_size, length=32,
        pipeline=[dict(type='PackSegInputs')]))
val_dataloader = dict(
    batch_size=2, dataset=dict(img_size=crop_size, length=8))
test_dataloader = val_dataloader
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=False,
        pad_val=0,
        seg_pad_val=255,
        size=crop_size),
    pretrained=None,
    backbone=dict(
        type='UNet',
        in_channels=3,
        base_channels=8,
        num_stages=3,
        strides=(1, 1, 1),
        enc_num_convs=(2, 2, 2),
        dec_num_convs=(2, 2),
        downsamples=(True, True),
        enc_dilations=(1, 1, 1),
        dec_dilations=(1, 1),
        norm_cfg=norm_cfg,
        upsample_cfg=dict(type='InterpConv'),
        norm_eval=False),
    decode_head=dict(
        type='FCNHead',
        in_channels=8,
        in_index=2,
        channels=8,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.0,
        num_classes={{_base_.num_classes}},
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
optim_wrapper = dict(optimizer=dict(lr=0.05))
train_cfg = dict(max_iters=4, val_interval=4)
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(interval=4, max_keep_ckpts=1),
    visualization=dict(type='SegVisualizationHook', draw=False))
custom_hooks = [dict(type='LossRecorderHook')]
randomness = dict(seed=0)
