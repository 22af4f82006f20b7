# Cross-entropy (mmseg's own), the baseline of the loss grid. Every loss base
# averages over the labelled pixels (avg_non_ignore=True) so that the grid
# compares losses, not reductions.
loss_decode = dict(
    type='CrossEntropyLoss',
    use_sigmoid=False,
    loss_weight=1.0,
    avg_non_ignore=True)
