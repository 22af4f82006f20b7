# LDAM (Cao et al., NeurIPS 2019): CE(s * (z - Delta_y onehot(y))),
# Delta_c = max_m * (n_min / n_c)^(1/4). s=30 is the paper's value for cosine
# logits; mmseg heads give raw logits, so tune s (e.g. 1) for your head.
# Deferred re-weighting: set drw_start_iter (e.g. 24000 of a 30k schedule).
# class_counts is left out: the grid config supplies it from the data set's
# statistics file (class_counts=_base_.class_stats_file).
loss_decode = dict(
    type='LDAMLoss',
    max_m=0.5,
    s=30.0,
    drw_start_iter=None,
    drw_beta=0.9999,
    count_type='pixel',
    loss_weight=1.0,
    avg_non_ignore=True)
