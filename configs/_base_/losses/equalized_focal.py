# Equalized Focal Loss (Li et al., CVPR 2022), pixel level: sigmoid focal
# loss with the focusing factor gamma_c = gamma_b + s (1 - g_c) of class c
# (g_c its accumulated positive / negative gradient ratio, clamped to
# [0, 1]; buffers saved in checkpoints) and the weighting factor
# gamma_c / gamma_b. gamma_b, s, alpha are the paper's (not swept here).
# Needs no class counts.
loss_decode = dict(
    type='EqualizedFocalLoss',
    gamma_b=2.0,
    s=8.0,
    alpha=0.25,
    loss_weight=1.0,
    avg_non_ignore=True)
