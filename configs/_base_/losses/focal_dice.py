# Softmax focal + soft Dice as mmseg's loss list (weights 1.0 and 1.0):
# both are logged (loss_focal, loss_dice) and their sum is back-propagated.
# The focal term (gamma=1, focal.py's CamVid choice) down-weights easy
# pixels; the Dice term weighs each class present alike, whatever its size.
loss_decode = [
    dict(
        type='SoftmaxFocalLoss',
        gamma=1.0,
        loss_weight=1.0,
        avg_non_ignore=True),
    dict(
        type='SoftDiceLoss',
        exponent=1,
        classes='present',
        per_image=False,
        smooth=0.0,
        loss_weight=1.0),
]
