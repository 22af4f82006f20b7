# Class-balanced focal loss (Cui et al., CVPR 2019): w_y (1 - p_y)^gamma CE.
# class_counts is left out: the grid config supplies it from the data set's
# statistics file (class_counts=_base_.class_stats_file).
loss_decode = dict(
    type='ClassBalancedLoss',
    beta=0.9999,
    base='focal',
    gamma=2.0,
    count_type='pixel',
    loss_weight=1.0,
    loss_name='loss_cbfocal',
    avg_non_ignore=True)
