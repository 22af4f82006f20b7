# Synthetic data for the end-to-end sweep test: the tiny grid data (32x32,
# 8 training images, LongTailIoUMetric with fixed groups) with a selection
# split (val: 4 images, seed 10000) and a different report split (test: 6
# images, seed 20000).
_base_ = ['../../test_configs/data/synthetic_tiny.py']
test_dataloader = dict(dataset=dict(length=6, seed=20_000))
