# Class-balanced CE (Cui et al., CVPR 2019): w_c = (1 - beta) / (1 - beta^n_c).
# class_counts is left out: the grid config supplies it from the data set's
# statistics file (class_counts=_base_.class_stats_file). With pixel counts in
# the millions beta=0.9999 gives near-uniform weights; the loss warns at build
# time and suggests a beta (or count_type='image') that separates the classes.
loss_decode = dict(
    type='ClassBalancedLoss',
    beta=0.9999,
    base='ce',
    count_type='pixel',
    loss_weight=1.0,
    avg_non_ignore=True)
