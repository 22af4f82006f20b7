# U-Net (Ronneberger et al., 2015): mmseg's UNet backbone + FCNHead, laid out
# as mmseg's fcn_unet_s5-d16 but with base_channels=32 (the light default
# shared by the U-Net family here: unet.py, attunet.py and unetpp.py all use
# the same 5-stage encoder, so they differ only in the decoder).
# For mmseg's original width set backbone.base_channels=64 and the heads'
# in_channels/channels to 64 / 128.
# mmseg's UNet needs H, W divisible by 16. Testing pads to it (the padding
# is cropped off the predictions); training pads to the preprocessor's
# `size`, which the data set config sets (mmseg allows `size` or
# `size_divisor`, not both): choose it divisible by 16, e.g. (368, 480) for
# CamVid's 360x480 crops.
norm_cfg = dict(type='SyncBN', requires_grad=True)  # = BN in 1-process runs
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    test_cfg=dict(size_divisor=16))
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        type='UNet',
        in_channels=3,
        base_channels=32,
        num_stages=5,
        strides=(1, 1, 1, 1, 1),
        enc_num_convs=(2, 2, 2, 2, 2),
        dec_num_convs=(2, 2, 2, 2),
        downsamples=(True, True, True, True),
        enc_dilations=(1, 1, 1, 1, 1),
        dec_dilations=(1, 1, 1, 1),
        with_cp=False,
        conv_cfg=None,
        norm_cfg=norm_cfg,
        act_cfg=dict(type='ReLU'),
        upsample_cfg=dict(type='InterpConv'),
        norm_eval=False),
    decode_head=dict(
        type='FCNHead',
        in_channels=32,
        in_index=4,
        channels=32,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(
        type='FCNHead',
        in_channels=64,
        in_index=3,
        channels=32,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
