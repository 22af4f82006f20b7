# Post-hoc logit adjustment (Menon et al., ICLR 2021) of a plain-CE model:
# predictions argmax(z - tau log prior), prior from the training pixel
# counts. Same weights and training as the quick start (checkpoints load
# both ways); only test/val predictions change. Find tau on the validation
# split in one pass with tools/analysis_tools/logit_adjust_sweep.py, which
# writes such a config with the best tau.
_base_ = ['../quickstart/unet_tiny_synthetic_ce.py']
model = dict(
    type='LogitAdjustedEncoderDecoder',
    test_cfg=dict(logit_adjust=dict(
        class_counts='work_dirs/synthetic_stats.json', count_type='pixel',
        tau=1.0)))
