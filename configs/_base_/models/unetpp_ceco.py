# UNet++ with the CeCo training branch (Zhong et al., CVPR 2023) on the last
# top-row node X[0,4]. Inference is plain UNet++.
# class_counts is REQUIRED (image counts of the training split): set it to
# the statistics JSON written by tools/analysis_tools/class_stats.py, e.g.
#   model = dict(decode_head=dict(ceco_cfg=dict(
#       class_counts='data/camvid/class_stats.json')))
# channels (the ETF dimension) must be >= num_classes.
_base_ = ['./unetpp.py']
model = dict(
    decode_head=dict(
        type='CeCoUNetPlusPlusHead',
        ceco_cfg=dict(
            class_counts=None,
            count_type='image',
            channels=64,
            scale=5.0,
            loss_weight=0.8,
            seed=0)))
