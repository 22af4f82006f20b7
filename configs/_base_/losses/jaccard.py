# Soft Jaccard (Wang et al., NeurIPS 2023, Jaccard metric loss, L1 form):
# mean over the classes present in the batch of 1 - J_c,
# J_c = (|x| + |y| - |x - y|) / (|x| + |y| + |x - y|) (the IoU for one-hot
# predictions). Needs no class counts. Alone it ignores false positives of
# classes absent from the batch: usually combined with CE (ce_jaccard.py).
loss_decode = dict(
    type='SoftJaccardLoss',
    classes='present',
    per_image=False,
    smooth=0.0,
    loss_weight=1.0)
