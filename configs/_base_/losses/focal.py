# Softmax focal loss (Lin et al., ICCV 2017): -(1 - p_y)^gamma log p_y.
loss_decode = dict(
    type='SoftmaxFocalLoss', gamma=2.0, loss_weight=1.0, avg_non_ignore=True)
