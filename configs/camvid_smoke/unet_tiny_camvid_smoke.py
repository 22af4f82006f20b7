# Smoke test on the real CamVid files: a tiny U-Net (mmseg UNet backbone +
# FCNHead) at quarter resolution (128x96), a few iterations, long-tail metric
# with head/body/tail mIoU. Used by tests/test_datasets/test_camvid_train.py:
#   python tools/train.py configs/camvid_smoke/unet_tiny_camvid_smoke.py \
#     --cfg-options train_dataloader.dataset.data_root=../shared/data/camvid \
#     val_dataloader.dataset.data_root=../shared/data/camvid \
#     test_dataloader.dataset.data_root=../shared/data/camvid \
#     val_evaluator.class_stats_file=data/camvid/class_stats.json
_base_ = [
    '../_base_/models/unet.py', '../_base_/datasets/camvid.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_30k.py'
]
crop_size = (64, 64)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(base_channels=8),
    decode_head=dict(
        in_channels=8,
        channels=8,
        dropout_ratio=0.0,
        num_classes={{_base_.num_classes}}),
    auxiliary_head=None)
# quarter resolution: 480x360 -> 128x96 (divisible by the U-Net's 16)
train_pipeline = [
    dict(type='LoadImageNamingFile'),
    dict(type='LoadAnnotationsNamingFile'),
    dict(
        type='RandomResize',
        scale=(128, 96),
        ratio_range=(0.75, 1.5),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageNamingFile'),
    dict(type='Resize', scale=(128, 96), keep_ratio=True),
    dict(type='LoadAnnotationsNamingFile'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(indices=8, pipeline=test_pipeline))
# the shared CamVid copy has no test split: test on the same val subset
test_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        indices=8,
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        pipeline=test_pipeline))
optim_wrapper = dict(optimizer=dict(lr=0.05))
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=10,
         by_epoch=False)
]
train_cfg = dict(max_iters=10, val_interval=10)
default_hooks = dict(
    logger=dict(interval=5),
    checkpoint=dict(interval=10, max_keep_ckpts=1),
    visualization=dict(type='SegVisualizationHook', draw=False))
randomness = dict(seed=0)
