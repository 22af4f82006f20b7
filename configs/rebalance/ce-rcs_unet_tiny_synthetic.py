# Rare Class Sampling (DAFormer, Hoyer et al., CVPR 2022) around the training
# set: class c drawn with softmax((1 - f_c) / T), then an image holding at
# least min_pixels of c, then random 32x32 crops retried until one holds
# min_crop_ratio * min_pixels of c. Per-image counts come from the statistics
# JSON of this very split (same length and order).
_base_ = ['../quickstart/unet_tiny_synthetic_ce.py']
crop = (32, 32)
train_pipeline = [
    dict(type='RandomCrop', crop_size=crop),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
model = dict(data_preprocessor=dict(size=crop))
train_dataloader = dict(dataset=dict(
    _delete_=True,
    type='RareClassSampleDataset',
    dataset=dict(_base_.train_dataloader.dataset, pipeline=train_pipeline),
    class_stats='work_dirs/synthetic_stats.json',
    temperature=0.1,
    min_pixels=64,
    min_crop_ratio=0.5,
    max_retries=10))
