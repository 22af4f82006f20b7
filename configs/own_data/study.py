# Compare losses on your own data set. Copy this file and data.py into a
# folder of yours, edit both, and run from that folder:
#   python PLUGIN/tools/grid.py --study study.py --dry-run   # the plan
#   python PLUGIN/tools/grid.py --study study.py             # every run
#   python PLUGIN/tools/collect_results.py --study study.py --page
# Runs go to work_dirs/<name>/ of the current folder, their records to its
# results/ and the page (results/page.md) beside them. Relative paths are
# relative to this file; `mmseg_longtail::X` is X under the plugin's
# configs/. docs/grid.md describes every key.
name = 'my_study'
title = 'Losses on my data'
datasets = dict(
    mine=dict(
        base='data.py',
        name='mine',
        title='My data',
        # settings are selected on 20% of the training files (file by file;
        # a regular expression's first group keeps groups together, e.g.
        # r'^([a-z]+)_' for one video per prefix) and reported on val
        selection=dict(carve=dict(fraction=0.2, group=r'^(.*)$')),
        report='val'))
models = dict(
    unet=dict(
        base='mmseg_longtail::_base_/models/unet.py',
        name='unet-s5-d16_fcn',
        title='UNet',
        size_divisor=16,
        aux='none'))
# Each loss's `sweep` lists the settings tried on the selection split;
# delete a `sweep` to run the loss's base setting only.
losses = dict(
    ce=dict(base='mmseg_longtail::_base_/losses/ce.py', name='ce',
            title='CE'),
    focal=dict(
        base='mmseg_longtail::_base_/losses/focal.py',
        name='focal',
        title='Focal',
        sweep=dict(gamma=[1.0, 2.0])),
    bms=dict(
        base='mmseg_longtail::_base_/losses/bms.py',
        name='bms',
        title='BMS',
        sweep=dict(tau=[0.5, 1.0])),
    pat=dict(
        base='mmseg_longtail::_base_/losses/pat.py',
        name='pat',
        title='PAT',
        sweep=dict(tau=[1.0, 2.0])))
# SGD + poly for `iters` iterations (milestones and intervals scaled)
schedule = dict(
    base='mmseg_longtail::_base_/schedules/schedule_30k.py', iters=8000)
# every setting with seed 0; the selected setting of each loss, and CE,
# with seeds 1 and 2 as well (mean +- std over three seeds)
seeds = [0]
selected_seeds = [1, 2]
extra_seeds = dict(ce=[1, 2])
priority = ['ce']
