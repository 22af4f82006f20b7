# Light DeepLabV3+ for the CPU CamVid study: mmseg's
# DepthwiseSeparableASPPHead (ASPP rates 6/12/18 + the stride-4 decoder) on
# a half-width ResNetV1c-18 (stem 32, stages 32/64/128/256 channels) at
# output stride 16, trained from scratch. mmseg's deeplabv3plus_r18-d8
# (full width, stride 8) costs 11x the MACs (5.7 vs 0.51 GMAC per 144x192
# image), too much for minutes on 2 CPU cores; this keeps the family's
# design (dilated ResNet, ASPP, low-level skip) at the U-Net's cost.
_base_ = ['../../_base_/models/deeplabv3plus.py']
model = dict(
    backbone=dict(
        depth=18,
        stem_channels=32,
        base_channels=32,
        dilations=(1, 1, 1, 2),
        strides=(1, 2, 2, 1)),
    decode_head=dict(
        in_channels=256,
        channels=64,
        dilations=(1, 6, 12, 18),
        c1_in_channels=32,
        c1_channels=12),
    auxiliary_head=dict(in_channels=128, channels=32))
