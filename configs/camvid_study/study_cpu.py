# The CamVid loss study: every loss of the grid with one U-Net-family and one
# DeepLab-family model, sized for a CPU budget (docs/study.md). Read by
#   python tools/grid.py --study configs/camvid_study/study_cpu.py   # run
#   python tools/collect_results.py \
#       --study configs/camvid_study/study_cpu.py --page             # page
# Add --full-res to both for the same study at CamVid's full resolution with
# the grid's models and the paper's 30k schedule (a GPU job; `full_res`
# below). Relative paths are relative to the repository root.
name = 'camvid_cpu'
title = 'CamVid loss study (CPU budget)'
dataset = dict(
    key='camvid',
    base='configs/camvid_study/camvid_144x192.py',
    name='camvid',
    title='CamVid')
# Overridable with --data-root; the cells' configs get it written in.
data_root = '../shared/data/camvid'
# None: <work_root>/class_stats.json, written by tools/grid.py from the
# training labels (tools/analysis_tools/class_stats.py) when missing.
class_stats_file = None
work_root = 'work_dirs/camvid_study'
schedule = dict(base='configs/camvid_study/schedule_cpu.py')
models = dict(
    unet=dict(
        base='configs/camvid_study/models/unet-s5-c8.py',
        name='unet-s5-c8_fcn',
        title='UNet-c8',
        size_divisor=16),
    deeplabv3plus=dict(
        base='configs/camvid_study/models/deeplabv3plus_r18-w32-d16.py',
        name='deeplabv3plus_r18-w32-d16',
        title='DLV3+ R18-w32'))
losses = ['ce', 'focal', 'cb', 'cbfocal', 'bms', 'ldam', 'blv', 'pat',
          'cb_median', 'ldam_s1']
# Losses beyond the grid's (base: a loss base config or a grid loss key;
# options: fields set on its loss_decode). CB with the paper's beta=0.9999
# is plain CE on pixel counts (uniform weights): CB-median sets beta from
# the counts (1 - 1/median count). LDAM's s=30 is the paper's scale for
# cosine logits; on raw logits the loss starts near 40 and training
# collapses at this learning rate: LDAM-s1 uses s=1 (margins in logit units).
extra_losses = dict(
    cb_median=dict(
        base='configs/_base_/losses/cb_median.py',
        name='cb-median',
        title='CB-median',
        counted=True),
    ldam_s1=dict(
        base='ldam',
        options=dict(s=1.0),
        name='ldam-s1',
        title='LDAM-s1',
        counted=True))
seeds = [0]
# a second seed where the seed noise matters most: the baseline and PAT
extra_seeds = dict(ce=[1], pat=[1])
# run order: CE and PAT (both models) first, then the other losses, then
# the extra seeds (tools/misc/grid_spec.py: study_cells)
priority = ['ce', 'pat']
page = 'docs/results/camvid.md'
# --full-res: CamVid at 360x480 (batch 4), the grid's UNet (base 32) and
# DeepLabV3+ (ResNetV1c-50, stride 8), the paper's 30k schedule.
full_res = dict(
    name='camvid_full',
    title='CamVid loss study (full resolution)',
    dataset=dict(base='configs/_base_/datasets/camvid.py'),
    schedule=dict(base='configs/_base_/schedules/schedule_30k.py'),
    models=dict(unet='unet', deeplabv3plus='deeplabv3plus'),
    work_root='work_dirs/camvid_study_full',
    page='docs/results/camvid_full.md')
