# Class-balanced focal loss (Cui et al., CVPR 2019): w_y (1 - p_y)^gamma CE.
# beta=0.9999 on image counts, as CB's selection in the CamVid study
# (docs/results/camvid.md; cb.py says why not pixel counts); CBFocal's own
# sweep there (beta=median on pixel counts against this) is not finished, and
# this setting follows its selection when it is. gamma=2 is the paper's.
# class_counts is left out: the grid config supplies it from the data set's
# statistics file (class_counts=_base_.class_stats_file).
loss_decode = dict(
    type='ClassBalancedLoss',
    beta=0.9999,
    base='focal',
    gamma=2.0,
    count_type='image',
    loss_weight=1.0,
    loss_name='loss_cbfocal',
    avg_non_ignore=True)
