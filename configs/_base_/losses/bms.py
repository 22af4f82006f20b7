# Balanced Softmax (Ren et al., NeurIPS 2020): CE(z + tau * log pi).
# class_counts is left out: the grid config supplies it from the data set's
# statistics file (class_counts=_base_.class_stats_file).
loss_decode = dict(
    type='BalancedSoftmaxLoss',
    tau=1.0,
    count_type='pixel',
    loss_weight=1.0,
    avg_non_ignore=True)
