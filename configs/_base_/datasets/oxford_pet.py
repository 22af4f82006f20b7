# Oxford-IIIT Pet trimaps as 3 classes (background, pet, boundary) at the PAT
# paper's 256x256, seeded 80/10/10 split of all images
# (tools/dataset_converters/oxford_pet.py). Class statistics:
#   python tools/analysis_tools/class_stats.py configs/_base_/datasets/oxford_pet.py --out data/oxford_pet/class_stats.json
dataset_type = 'OxfordPetDataset'
data_root = 'data/oxford_pet'
num_classes = 3
crop_size = (256, 256)
class_stats_file = 'data/oxford_pet/class_stats.json'
train_pipeline = [
    dict(type='LoadImageNamingFile'),
    dict(type='LoadAnnotationsNamingFile'),
    # values neither a class id nor ignore_index fail naming the file
    dict(type='CheckLabelRange', num_classes=num_classes),
    # images of any size and aspect -> 256x256 (aspect not kept, as in the
    # paper), then scale jitter
    dict(
        type='RandomResize',
        scale=(256, 256),
        ratio_range=(0.5, 2.0),
        keep_ratio=False),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageNamingFile'),
    dict(type='Resize', scale=(256, 256), keep_ratio=False),
    dict(type='LoadAnnotationsNamingFile'),
    # values neither a class id nor ignore_index fail naming the file
    dict(type='CheckLabelRange', num_classes=num_classes),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=8,
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
