# CamVid at half resolution for the CPU study (configs/camvid_study/
# study_cpu.py): images resized to 240x180 (CamVid files are 480x360),
# training on 144x192 crops with the full-resolution base's augmentation
# (scale jitter 0.5-2.0, crop, flip, photometric distortion), batch 8.
# Validation resizes the image to 240x180 and scores the upsampled
# prediction against the labels at their own resolution (480x360), so the
# numbers are comparable with full-resolution runs.
_base_ = ['../_base_/datasets/camvid.py']
crop_size = (144, 192)
img_scale = (240, 180)
train_pipeline = [
    dict(type='LoadImageNamingFile'),
    dict(type='LoadAnnotationsNamingFile'),
    dict(type='CheckLabelRange', num_classes=_base_.num_classes),
    dict(
        type='RandomResize',
        scale=img_scale,
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageNamingFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    # annotations after Resize: evaluation at the labels' own resolution
    dict(type='LoadAnnotationsNamingFile'),
    dict(type='CheckLabelRange', num_classes=_base_.num_classes),
    dict(type='PackSegInputs')
]
# One loader worker: the 2-core machine needs the other core for the model.
train_dataloader = dict(
    batch_size=8, num_workers=1, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(num_workers=1, dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(num_workers=1, dataset=dict(pipeline=test_pipeline))
