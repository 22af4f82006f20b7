# Generalized Dice (Sudre et al., DLMIA 2017): one Dice over all classes,
# class c weighted by 1 / n_c^2 (n_c its pixels in the batch, clamped to at
# least eps), so small structures weigh as much as large ones. Needs no
# class counts.
loss_decode = dict(
    type='GeneralizedDiceLoss',
    eps=1.0,
    classes='present',
    per_image=False,
    loss_weight=1.0)
