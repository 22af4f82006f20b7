# Seesaw loss (Wang et al., CVPR 2021) per pixel: the logit of each other
# class j of a pixel of class i is scaled by S_ij = M_ij C_ij, mitigation
# (N_j / N_i)^p for rarer j from cumulative pixel counts gathered online (a
# buffer that checkpoints save), compensation (s_j / s_i)^q when j is scored
# above the true class. p=0.8, q=2 are the paper's (not tuned here). Needs
# no class counts.
loss_decode = dict(
    type='SeesawLoss',
    p=0.8,
    q=2.0,
    eps=0.01,
    loss_weight=1.0,
    avg_non_ignore=True)
