# Light U-Net for the CPU CamVid study: mmseg's UNet backbone (5 stages,
# strides 1..16) + FCNHead as configs/_base_/models/unet.py, with
# base_channels=8 (channels 8..128) instead of 32, so that a run of the
# study fits a few CPU minutes. Inputs must be divisible by 16 (training
# pads to the preprocessor's `size`, testing to size_divisor=16).
_base_ = ['../../_base_/models/unet.py']
model = dict(
    backbone=dict(base_channels=8),
    decode_head=dict(in_channels=8, channels=8),
    auxiliary_head=dict(in_channels=16, channels=8))
