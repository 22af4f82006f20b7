# Soft Dice (Milletari et al., 3DV 2016): mean over the classes present in
# the batch of 1 - D_c; exponent=1 sums |x| + |y| (the Dice semimetric form
# of Wang et al., MICCAI 2023), exponent=2 V-Net's squares. Needs no class
# counts.
loss_decode = dict(
    type='SoftDiceLoss',
    exponent=1,
    classes='present',
    per_image=False,
    smooth=0.0,
    loss_weight=1.0)
