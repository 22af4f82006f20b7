# The CamVid loss study: every loss of the grid swept over its
# main hyper-parameter, the setting selected on a split carved from train
# (whole sequences), reported on CamVid val with three seeds, on a model
# and schedule sized to converge on a 2-core CPU (docs/study.md). Read by
#   python tools/grid.py --study configs/camvid_study/study_cpu.py   # run
#   python tools/collect_results.py \
#       --study configs/camvid_study/study_cpu.py --page             # page
# Add --full-res to both for the same study at CamVid's full resolution with
# the grid's models and the paper's 30k schedule (a GPU job; `full_res`
# below). Relative paths are relative to this file (the records and the
# page are the committed ones under docs/results/); work dirs go to
# work_dirs/<name>/ of the current folder.
_base_ = ['../grid/paper_grid.py']
name = 'camvid_cpu'
title = 'CamVid loss study (CPU budget)'
datasets = dict(
    _delete_=True,
    camvid=dict(
        base='camvid_144x192.py',
        name='camvid',
        title='CamVid',
        # overridable with --data-root; written into the cells' data base
        data_root='../../../shared/data/camvid',
        # settings are selected on sequence 0006R0 (101 of the 367 training
        # frames, carved whole: neighbouring frames of one video are near
        # duplicates) and trained on the other 266; CamVid's val split (101
        # frames) is the report split (the shared copy has no test split).
        # Not the smaller 0001TP (62 frames): its mIoU moved by a point
        # between evaluations even at the end of the schedule, too noisy to
        # judge convergence or select on (docs/study.md, "Sizing").
        selection=dict(
            carve=dict(fraction=101 / 367, group=r'^([0-9A-Za-z]+)_')),
        report='val'))
# One model: the budget (about 8 hours) buys one converged model, not two.
# The U-Net family as in the PAT paper, without an auxiliary head (its CE
# would train the encoder for every loss).
models = dict(
    _delete_=True,
    unet=dict(
        base='models/unet-s5-c8.py',
        name='unet-s5-c8_fcn',
        title='UNet-c8',
        size_divisor=16,
        aux='none'))
# Two settings of each loss's main hyper-parameter, from the papers' ranges
# (the paper grid sweeps more; these are the two the budget allows). CB and
# CBFocal never use beta=0.9999 on pixel counts: with millions of pixels per
# class its weights are uniform, i.e. plain CE / Focal. LDAM's DRW starts at
# 80% of the schedule (the LDAM paper's epoch 160 of 200) with the
# effective-number weights of beta='median' (0.9999 on pixel counts is
# uniform again).
losses = dict(
    _delete_=True,
    ce=_base_.losses.ce,
    focal=dict(
        base='mmseg_longtail::_base_/losses/focal.py',
        name='focal',
        title='Focal',
        sweep=dict(gamma=[1.0, 2.0])),
    cb=dict(
        base='mmseg_longtail::_base_/losses/cb.py',
        name='cb',
        title='CB',
        sweep=[
            dict(options=dict(beta='median', count_type='pixel'),
                 tag='bmed',
                 label='beta=median'),
            dict(options=dict(beta=0.9999, count_type='image'),
                 tag='b0.9999-img', label='beta=0.9999, image counts'),
        ]),
    # the paper grid's entries, with the same settings
    cbfocal=_base_.losses.cbfocal,
    bms=_base_.losses.bms,
    ldam=dict(
        base='mmseg_longtail::_base_/losses/ldam.py',
        name='ldam',
        title='LDAM',
        options=dict(drw_start_iter=1920, drw_beta='median'),
        sweep=[
            dict(options=dict(s=1.0), tag='s1-drw', label='s=1, DRW'),
            dict(options=dict(s=5.0), tag='s5-drw', label='s=5, DRW'),
        ]),
    blv=dict(
        base='mmseg_longtail::_base_/losses/blv.py',
        name='blv',
        title='BLV',
        sweep=dict(sigma=[2.0, 4.0])),
    pat=dict(
        base='mmseg_longtail::_base_/losses/pat.py',
        name='pat',
        title='PAT',
        sweep=dict(tau=[1.0, 2.0])),
    # the newer losses with the paper grid's two settings each
    recall=_base_.losses.recall,
    seesaw=_base_.losses.seesaw,
    eqlv2=_base_.losses.eqlv2,
    efl=_base_.losses.efl,
    topk=_base_.losses.topk)
schedule = dict(base='schedule_cpu.py')
# every setting with seed 0; the selected setting of each loss, and CE, with
# seeds 1 and 2 as well (mean +- std over three seeds)
seeds = [0]
selected_seeds = [1, 2]
extra_seeds = dict(ce=[1, 2])
# run order: CE first, then the sweeps, then the selected settings' seeds
priority = ['ce']
# shown under the page's title
notes = [
    'Sized to converge on a 2-core CPU (docs/study.md, "Sizing"): images '
    'resized to 240x180 (half of CamVid\'s 480x360 per side), 144x192 '
    'crops, a U-Net of base width 8 (0.46 M parameters), 2400 iterations '
    '(72 epochs). Published from-scratch CamVid results are higher by '
    'design: ENet 51.3 and SegNet about 46-55 mIoU, at 360x480 on the test '
    'split (this copy has none; `val` here), with larger models trained '
    'for hundreds of epochs. Compare the losses with each other under this '
    'one converged schedule, and CE\'s row with those numbers.',
]
results_dir = '../../docs/results/camvid_cpu'
page = '../../docs/results/camvid.md'
config_dir = None
# --full-res: CamVid at 360x480 (batch 4), the grid's UNet (base 32) and
# DeepLabV3+ (ResNetV1c-50, stride 8), the paper's 30k schedule (DRW from
# iteration 24000).
full_res = dict(
    name='camvid_full',
    title='CamVid loss study (full resolution)',
    datasets=dict(
        camvid=dict(base='mmseg_longtail::_base_/datasets/camvid.py')),
    schedule=dict(
        base='mmseg_longtail::_base_/schedules/schedule_30k.py'),
    losses=dict(ldam=dict(options=dict(drw_start_iter=24000))),
    models=dict(
        _delete_=True,
        unet=_base_.models.unet,
        deeplabv3plus=_base_.models.deeplabv3plus),
    notes=[
        'CamVid at 360x480 with the grid\'s models and the 30k schedule (a '
        'GPU study). Published from-scratch results at this resolution, '
        'for scale: ENet 51.3 and SegNet about 46-55 mIoU on the test split '
        '(this copy has none; `val` here).'
    ],
    results_dir='../../docs/results/camvid_full',
    page='../../docs/results/camvid_full.md')
