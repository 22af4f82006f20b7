# PAT: exp((p_y - 1) / tau) * CE per pixel, each (image, class) mask
# normalised by its size (normalize='mask'); needs no class counts.
loss_decode = dict(
    type='PATLoss',
    tau=2.0,
    normalize='mask',
    detach_weight=False,
    loss_weight=1.0,
    avg_non_ignore=True)
