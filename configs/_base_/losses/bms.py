# Balanced Softmax (Ren et al., NeurIPS 2020): CE(z + tau * log pi).
# tau=0.5 (the paper's Balanced Softmax is tau=1; tau is logit
# adjustment's scale, Menon et al. 2021): selected by the CamVid study
# (docs/results/camvid.md; UNet-c8, seed 0): mean mIoU on the selection
# split 33.3 against 30.3 with tau=1. On val the two were close (40.9 and
# 41.1 mIoU; tail 1.8 and 5.4): the selection split, not val, decides.
# class_counts is left out: the grid config supplies it from the data set's
# statistics file (class_counts=_base_.class_stats_file).
loss_decode = dict(
    type='BalancedSoftmaxLoss',
    tau=0.5,
    count_type='pixel',
    loss_weight=1.0,
    avg_non_ignore=True)
