# Your data set as an mmseg data base: edit the first block. Expected layout
# (mmseg's): <data_root>/img_dir/{train,val}/NAME<img_suffix> and
# <data_root>/ann_dir/{train,val}/NAME.png, labels 0..K-1 with 255 for
# unlabelled pixels. The class statistics (losses' class_counts, the
# metric's head / body / tail groups) are written to class_stats_file from
# the training split before the first run when the file is missing.
data_root = 'data/mine'
classes = ('background', 'thing', 'rare thing')
img_suffix = '.jpg'
crop_size = (256, 256)  # training crops (height, width)
img_scale = (512, 512)  # images are resized to about this size
class_stats_file = data_root + '/class_stats.json'

num_classes = len(classes)
dataset = dict(
    type='LongTailSegDataset',
    data_root=data_root,
    metainfo=dict(classes=classes),
    img_suffix=img_suffix,
    seg_map_suffix='.png')
train_pipeline = [
    dict(type='LoadImageNamingFile'),
    dict(type='LoadAnnotationsNamingFile'),
    # values neither a class id nor 255 fail naming the file
    dict(type='CheckLabelRange', num_classes=num_classes),
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
    # labels after Resize: scores at the labels' own resolution
    dict(type='LoadAnnotationsNamingFile'),
    dict(type='CheckLabelRange', num_classes=num_classes),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        dataset,
        data_prefix=dict(
            img_path='img_dir/train', seg_map_path='ann_dir/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        dataset,
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='LongTailIoUMetric', class_stats_file=class_stats_file)
test_evaluator = val_evaluator
