# CE + soft Jaccard as mmseg's loss list: both are logged (loss_ce,
# loss_jaccard) and their sum is back-propagated. CE gives every pixel a
# gradient (also false positives of classes absent from the batch); the
# Jaccard term optimises the per-class overlap that mIoU measures.
loss_decode = [
    dict(
        type='CrossEntropyLoss',
        use_sigmoid=False,
        loss_weight=1.0,
        avg_non_ignore=True),
    dict(
        type='SoftJaccardLoss',
        classes='present',
        per_image=False,
        smooth=0.0,
        loss_weight=1.0),
]
