# BLV (Wang et al., CVPR 2023): CE(z + v * r_c) with
# v = |clamp(N(0, sigma), -1, 1)| drawn per logit and r_c larger for rarer
# classes; training only.
# sigma=2 (the official code's is 4): selected by the CamVid study
# (docs/results/camvid.md; UNet-c8, seed 0): mean mIoU on the selection
# split 33.6 against 33.0 with sigma=4 (val 41.9 and 40.9; tail 0.0 in both).
# Seed 0 only chooses; with all seeds in, the margin (0.66) is within the
# selection split's seed noise (sqrt(2) sigma = 1.37), so the study does not
# separate sigma=2 from 4: 2 is the protocol's pick, not shown better.
# class_counts is left out: the grid config supplies it from the data set's
# statistics file (class_counts=_base_.class_stats_file).
loss_decode = dict(
    type='BLVLoss',
    sigma=2.0,
    mode='official',
    distribution='gaussian',
    count_type='pixel',
    loss_weight=1.0,
    avg_non_ignore=True)
