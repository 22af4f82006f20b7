# Equalization Loss v2 (Tan et al., CVPR 2021), pixel level: sigmoid BCE per
# class, the negative terms of class c weighted f(g_c), the positive ones
# 1 + alpha (1 - f(g_c)), f(g) = 1 / (1 + exp(-gamma (g - mu))), g_c the
# accumulated positive / negative gradient ratio of the class (buffers saved
# in checkpoints). gamma, mu, alpha are the paper's (not swept here). Needs
# no class counts.
loss_decode = dict(
    type='EQLv2Loss',
    gamma=12.0,
    mu=0.8,
    alpha=4.0,
    loss_weight=1.0,
    avg_non_ignore=True)
