# DeepLabV3+ with the CeCo training branch (Zhong et al., CVPR 2023) on the
# output of the separable bottleneck. Inference is plain DeepLabV3+.
# class_counts is REQUIRED (image counts of the training split): set it to
# the statistics JSON written by tools/analysis_tools/class_stats.py, e.g.
#   model = dict(decode_head=dict(ceco_cfg=dict(
#       class_counts='data/camvid/class_stats.json')))
_base_ = ['./deeplabv3plus.py']
model = dict(
    decode_head=dict(
        type='CeCoDepthwiseSeparableASPPHead',
        ceco_cfg=dict(
            class_counts=None,
            count_type='image',
            channels=256,
            scale=5.0,
            loss_weight=0.8,
            seed=0)))
