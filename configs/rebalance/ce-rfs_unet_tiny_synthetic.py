# Repeat-factor sampling (LVIS, Gupta et al., CVPR 2019) through mmengine's
# ClassBalancedDataset: r_c = max(1, sqrt(t / f_c)), f_c = fraction of
# training images holding class c, each image repeated ceil(max r_c) times.
# RepeatFactorDataset reads the image classes from the statistics JSON (any
# mmseg data set); this package's data sets also work with mmengine's own
# dict(type='ClassBalancedDataset', oversample_thr=0.5, dataset=...).
_base_ = ['../quickstart/unet_tiny_synthetic_ce.py']
train_dataloader = dict(dataset=dict(
    _delete_=True,
    type='RepeatFactorDataset',
    dataset=_base_.train_dataloader.dataset,
    class_stats='work_dirs/synthetic_stats.json',
    oversample_thr=0.5))
