# The CamVid loss study: every loss of the grid with one U-Net-family and one
# DeepLab-family model, sized for a CPU budget (docs/study.md). Read by
#   python tools/grid.py --study configs/camvid_study/study_cpu.py   # run
#   python tools/collect_results.py \
#       --study configs/camvid_study/study_cpu.py --page             # page
# Add --full-res to both for the same study at CamVid's full resolution with
# the grid's models and the paper's 30k schedule (a GPU job; `full_res`
# below). The losses come from the paper grid's spec (its sweeps removed,
# plus CB-median and LDAM-s1); relative paths are relative to the
# repository root.
_base_ = ['../grid/paper_grid.py']
name = 'camvid_cpu'
title = 'CamVid loss study (CPU budget)'
datasets = dict(
    _delete_=True,
    camvid=dict(
        base='configs/camvid_study/camvid_144x192.py',
        name='camvid',
        title='CamVid',
        # overridable with --data-root; written into the cells' data base
        data_root='../shared/data/camvid',
        # the shared copy has no test split: no held-out selection split
        # either (one setting per loss, so nothing is selected)
        selection='val',
        report='val'))
models = dict(
    _delete_=True,
    unet=dict(
        base='configs/camvid_study/models/unet-s5-c8.py',
        name='unet-s5-c8_fcn',
        title='UNet-c8',
        size_divisor=16),
    deeplabv3plus=dict(
        base='configs/camvid_study/models/deeplabv3plus_r18-w32-d16.py',
        name='deeplabv3plus_r18-w32-d16',
        title='DLV3+ R18-w32'))
# One setting per loss: the paper grid's losses without their sweeps (each
# base config's own setting), and two settings beyond them. CB with the
# paper's beta=0.9999 is plain CE on pixel counts (uniform weights):
# CB-median sets beta from the counts (1 - 1/median count). LDAM's s=30 is
# the paper's scale for cosine logits; on raw logits training collapses at
# this learning rate: LDAM-s1 uses s=1 (margins in logit units).
losses = dict(
    focal=dict(sweep=None),
    cb=dict(sweep=None),
    cbfocal=dict(sweep=None),
    bms=dict(sweep=None),
    ldam=dict(sweep=None),
    blv=dict(sweep=None),
    pat=dict(sweep=None),
    cb_median=dict(
        base='configs/_base_/losses/cb_median.py',
        name='cb-median',
        title='CB-median'),
    ldam_s1=dict(
        base='configs/_base_/losses/ldam.py',
        options=dict(s=1.0),
        name='ldam-s1',
        title='LDAM-s1'))
schedule = dict(base='configs/camvid_study/schedule_cpu.py')
seeds = [0]
selected_seeds = []
# a second seed where the seed noise matters most: the baseline and PAT
extra_seeds = dict(ce=[1], pat=[1])
# run order: CE and PAT (both models) first, then the other losses, then
# the extra seeds
priority = ['ce', 'pat']
work_root = 'work_dirs/camvid_study'
results_dir = 'docs/results/camvid_cpu'
page = 'docs/results/camvid.md'
config_dir = None
# --full-res: CamVid at 360x480 (batch 4), the grid's UNet (base 32) and
# DeepLabV3+ (ResNetV1c-50, stride 8), the paper's 30k schedule.
full_res = dict(
    name='camvid_full',
    title='CamVid loss study (full resolution)',
    datasets=dict(camvid=dict(base='configs/_base_/datasets/camvid.py')),
    schedule=dict(base='configs/_base_/schedules/schedule_30k.py'),
    models=dict(
        _delete_=True,
        unet=_base_.models.unet,
        deeplabv3plus=_base_.models.deeplabv3plus),
    work_root='work_dirs/camvid_study_full',
    results_dir='docs/results/camvid_full',
    page='docs/results/camvid_full.md')
