# Built-in synthetic long-tailed data (no files): 5 classes, 64x64, head/tail 50.
dataset_type = 'SyntheticLongTailDataset'
num_classes = 5
crop_size = (64, 64)
# Statistics of the train split: `python tools/analysis_tools/class_stats.py
# configs/quickstart/unet_tiny_synthetic_ce.py --out work_dirs/synthetic_stats.json`
class_stats_file = 'work_dirs/synthetic_stats.json'
synthetic = dict(
    type=dataset_type,
    num_classes=num_classes,
    img_size=crop_size,
    imbalance_ratio=50.0,
    ignore_index=255)
train_pipeline = [
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [dict(type='PackSegInputs')]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(**synthetic, length=256, seed=0, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        **synthetic, length=32, seed=10_000, pipeline=test_pipeline,
        test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU', 'mDice'])
test_evaluator = val_evaluator
