# Cityscapes (mmseg's CityscapesDataset, 19 train ids, *_labelTrainIds.png
# from mmseg's tools/dataset_converters/cityscapes.py), standard mmseg
# setting: 2048x1024 images, random scale 0.5-2.0, 512x1024 crops.
# Class statistics:
#   python tools/analysis_tools/class_stats.py configs/_base_/datasets/cityscapes_512x1024.py --out data/cityscapes/class_stats.json
dataset_type = 'CityscapesDataset'
data_root = 'data/cityscapes'
num_classes = 19
crop_size = (512, 1024)
class_stats_file = 'data/cityscapes/class_stats.json'
train_pipeline = [
    dict(type='LoadImageNamingFile'),
    dict(type='LoadAnnotationsNamingFile'),
    # values neither a class id nor ignore_index fail naming the file
    dict(type='CheckLabelRange', num_classes=num_classes),
    dict(
        type='RandomResize',
        scale=(2048, 1024),
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageNamingFile'),
    dict(type='Resize', scale=(2048, 1024), keep_ratio=True),
    dict(type='LoadAnnotationsNamingFile'),
    # values neither a class id nor ignore_index fail naming the file
    dict(type='CheckLabelRange', num_classes=num_classes),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='LongTailIoUMetric', class_stats_file=class_stats_file)
test_evaluator = val_evaluator
