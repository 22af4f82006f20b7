# CE + soft Dice as mmseg's loss list (weights 1.0 and 1.0, nnU-Net's
# compound loss): both are logged (loss_ce, loss_dice) and their sum is
# back-propagated. CE gives every pixel a gradient (also false positives of
# classes absent from the batch); the Dice term weighs each class present
# alike, whatever its size.
loss_decode = [
    dict(
        type='CrossEntropyLoss',
        use_sigmoid=False,
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
