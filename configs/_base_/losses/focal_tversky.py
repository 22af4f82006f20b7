# Softmax focal + focal Tversky as mmseg's loss list (weights 1.0 and 1.0):
# both are logged (loss_focal, loss_tversky) and their sum is
# back-propagated. Focal Tversky (Abraham & Khan, ISBI 2019): per class
# (1 - TI_c)^(1/gamma), TI_c = TP / (TP + alpha FP + beta FN); beta=0.7 >
# alpha=0.3 penalises missed pixels more (Salehi et al., MLMI 2017), gamma=4/3
# is the paper's best. The plugin's FocalTverskyLoss: mmseg 1.2.2's
# TverskyLoss has no focal exponent and drops the head's ignore_index
# (docs/losses.md).
loss_decode = [
    dict(
        type='SoftmaxFocalLoss',
        gamma=1.0,
        loss_weight=1.0,
        avg_non_ignore=True),
    dict(
        type='FocalTverskyLoss',
        alpha=0.3,
        beta=0.7,
        gamma=4 / 3,
        classes='present',
        per_image=False,
        smooth=0.0,
        loss_weight=1.0),
]
