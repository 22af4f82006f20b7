# BLV (Wang et al., CVPR 2023): CE(z + v * r_c) with
# v = |clamp(N(0, sigma), -1, 1)| drawn per logit and r_c larger for rarer
# classes; training only.
# class_counts is left out: the grid config supplies it from the data set's
# statistics file (class_counts=_base_.class_stats_file).
loss_decode = dict(
    type='BLVLoss',
    sigma=4.0,
    mode='official',
    distribution='gaussian',
    count_type='pixel',
    loss_weight=1.0,
    avg_non_ignore=True)
