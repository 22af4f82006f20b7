# NYU Depth v2 labelled set, 40 classes (Gupta et al.), 640x480, standard
# 795 train / 654 test split (no separate val: validation uses the test
# split, as is usual for NYUv2). Written by tools/dataset_converters/nyu_v2.py;
# with its `--split random` (the PAT paper's seeded 80/10/10) point the
# val data_prefix at img_dir/val + ann_dir40/val. Class statistics:
#   python tools/analysis_tools/class_stats.py configs/_base_/datasets/nyu_v2_40.py --out data/nyu_v2/class_stats40.json
dataset_type = 'NYUv2Dataset'
data_root = 'data/nyu_v2'
num_classes = 40
crop_size = (480, 640)
class_stats_file = 'data/nyu_v2/class_stats40.json'
train_pipeline = [
    dict(type='LoadImageNamingFile'),
    dict(type='LoadAnnotationsNamingFile'),
    # values neither a class id nor ignore_index fail naming the file
    dict(type='CheckLabelRange', num_classes=num_classes),
    dict(
        type='RandomResize',
        scale=(640, 480),
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageNamingFile'),
    dict(type='Resize', scale=(640, 480), keep_ratio=True),
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
            img_path='img_dir/train', seg_map_path='ann_dir40/train'),
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
            img_path='img_dir/test', seg_map_path='ann_dir40/test'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='LongTailIoUMetric', class_stats_file=class_stats_file)
test_evaluator = val_evaluator
