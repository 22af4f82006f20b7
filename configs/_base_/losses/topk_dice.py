# Top-k CE + soft Dice as mmseg's loss list (weights 1.0 and 1.0; the
# "DiceTopK" compound of Ma et al., MedIA 2021): both are logged (loss_topk,
# loss_dice) and their sum is back-propagated. Top-k CE (k=10 % of each
# image's labelled pixels) trains on the hardest pixels; the Dice term
# weighs each class present alike, whatever its size.
loss_decode = [
    dict(
        type='TopKCrossEntropyLoss',
        k=10.0,
        per_image=True,
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
