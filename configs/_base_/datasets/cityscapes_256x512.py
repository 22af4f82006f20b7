# Cityscapes at the PAT paper's resolution: images downscaled 4x to 512x256
# (WxH), random scale 0.5-2.0, 256x512 crops; testing on 512x256 inputs,
# scored against the full-resolution labels (predictions are upsampled).
# Same class statistics file as cityscapes_512x1024.py (counts come from
# the label files, whatever the training resolution).
_base_ = ['./cityscapes_512x1024.py']
crop_size = (256, 512)
train_pipeline = [
    dict(type='LoadImageNamingFile'),
    dict(type='LoadAnnotationsNamingFile'),
    # values neither a class id nor ignore_index fail naming the file
    dict(type='CheckLabelRange', num_classes=_base_.num_classes),
    dict(
        type='RandomResize',
        scale=(512, 256),
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageNamingFile'),
    dict(type='Resize', scale=(512, 256), keep_ratio=True),
    dict(type='LoadAnnotationsNamingFile'),
    # values neither a class id nor ignore_index fail naming the file
    dict(type='CheckLabelRange', num_classes=_base_.num_classes),
    dict(type='PackSegInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
