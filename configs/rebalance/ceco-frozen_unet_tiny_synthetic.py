# CeCo (Zhong et al., CVPR 2023) trained as the official code does: the
# branch's reduction, projection and ETF classifier stay at their initial
# values (freeze=True), so loss_ceco only shapes the head's features. The
# package default (freeze=False) trains them; docs/heads.md says why.
_base_ = ['../quickstart/unet_tiny_synthetic_ce.py']
model = dict(decode_head=dict(
    type='CeCoFCNHead',
    ceco_cfg=dict(class_counts='work_dirs/synthetic_stats.json',
                  channels=16, freeze=True)))
