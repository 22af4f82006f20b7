# Class-balanced focal loss with the CB paper's sigmoid base (Cui et al., CVPR
# 2019): w_y sum_c (1 - q_c)^gamma (-log q_c), q_c = sigmoid(+-z_c).
# cbfocal.py is the softmax-focal CB-Focal the grid runs.
# class_counts is left out: the config supplies it from the data set's
# statistics file.
loss_decode = dict(
    type='ClassBalancedLoss',
    beta=0.9999,
    base='sigmoid_focal',
    gamma=2.0,
    count_type='pixel',
    loss_weight=1.0,
    loss_name='loss_cbfocal',
    avg_non_ignore=True)
