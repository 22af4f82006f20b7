# Class weights generated from the class statistics, on any loss of this
# package: median-frequency balancing (Eigen & Fergus 2015); 'enet',
# 'inverse' and 'sqrt_inverse' work the same way. SoftmaxFocalLoss with
# gamma=0 is mmseg's CE bit for bit. Write the statistics first:
#   python tools/analysis_tools/class_stats.py configs/quickstart/unet_tiny_synthetic_ce.py \
#       --out work_dirs/synthetic_stats.json --weights mfb enet
# (for mmseg's own losses, --weights-dir writes <name>.json lists that their
# class_weight reads).
_base_ = ['../quickstart/unet_tiny_synthetic_ce.py']
model = dict(decode_head=dict(loss_decode=dict(
    _delete_=True,
    type='SoftmaxFocalLoss',
    gamma=0.0,
    class_weight='work_dirs/synthetic_stats.json:mfb',
    avg_non_ignore=True)))
