# Class-balanced CE with beta = 1 - 1/median(n_c): the effective-number
# scale 1/(1 - beta) is the median class count, so pixel counts in the
# millions still give separated weights (the paper's beta=0.9999 makes them
# uniform there; see cb.py). class_counts comes from the grid config.
loss_decode = dict(
    type='ClassBalancedLoss',
    beta='median',
    base='ce',
    count_type='pixel',
    loss_weight=1.0,
    loss_name='loss_cb',
    avg_non_ignore=True)
