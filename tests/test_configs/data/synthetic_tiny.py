# A data set base for grid smoke tests (the study spec
# tests/test_experiments/data/tiny_study.py): the built-in synthetic
# long-tailed data at 32x32, 8 training and 4 validation images, scored by
# LongTailIoUMetric with fixed head/body/tail groups (so no statistics file
# is needed). No class_stats_file of its own: a grid writes the statistics
# under its work root, never into the checkout.
_base_ = ['../../../configs/_base_/datasets/synthetic.py']
crop_size = (32, 32)
class_stats_file = None
train_dataloader = dict(
    batch_size=2, dataset=dict(img_size=crop_size, length=8))
val_dataloader = dict(
    batch_size=2, dataset=dict(img_size=crop_size, length=4))
test_dataloader = val_dataloader
val_evaluator = dict(
    _delete_=True,
    type='LongTailIoUMetric',
    frequency_groups=dict(head=[0, 1], body=[2], tail=[3, 4]))
test_evaluator = val_evaluator
