# A study spec for the launcher's smoke tests (local, preempted, SLURM):
# the tiny synthetic data (32x32, 8 training and 4 validation images,
# LongTailIoUMetric with fixed groups), the paper grid's UNet without an
# auxiliary head, CE, Focal (never run: a blank row) and PAT swept as in the
# paper grid, the 30k schedule (the tests shorten it with --cfg-options).
# Relative paths are relative to this file; the tests pass --work-root and
# --results-dir, so nothing is written beside it.
name = 'tiny_study'
title = 'Tiny study'
datasets = dict(
    synthetic_tiny=dict(
        base='../../test_configs/data/synthetic_tiny.py',
        name='synthetic-tiny',
        title='Synthetic tiny',
        selection='val',
        report='test'))
models = dict(
    unet=dict(
        base='mmseg_longtail::_base_/models/unet.py',
        name='unet-s5-d16_fcn',
        title='UNet',
        size_divisor=16,
        aux='none'))
losses = dict(
    ce=dict(base='mmseg_longtail::_base_/losses/ce.py', name='ce',
            title='CE'),
    focal=dict(
        base='mmseg_longtail::_base_/losses/focal.py',
        name='focal',
        title='Focal',
        sweep=dict(gamma=[1.0, 2.0])),
    pat=dict(
        base='mmseg_longtail::_base_/losses/pat.py',
        name='pat',
        title='PAT',
        sweep=dict(tau=[1.0, 2.0, 5.0])))
schedule = dict(base='mmseg_longtail::_base_/schedules/schedule_30k.py')
seeds = [0]
selected_seeds = [1, 2]
