# UNet++ (Zhou et al., DLMIA 2018): plain U-Net encoder (UNetEncoder,
# base_channels=32, strides 1..16; the encoder of unet.py) + UNetPlusPlusHead.
# Deep supervision is off; turn it on with
#   model = dict(decode_head=dict(deep_supervision=True, ds_inference='mean'))
# The auxiliary FCNHead reads the stride-8 stage. Any input size works.
norm_cfg = dict(type='SyncBN', requires_grad=True)  # = BN in 1-process runs
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        type='UNetEncoder',
        in_channels=3,
        base_channels=32,
        num_stages=5,
        strides=(1, 1, 1, 1, 1),
        enc_num_convs=(2, 2, 2, 2, 2),
        downsamples=(True, True, True, True),
        enc_dilations=(1, 1, 1, 1, 1),
        with_cp=False,
        conv_cfg=None,
        norm_cfg=norm_cfg,
        act_cfg=dict(type='ReLU'),
        norm_eval=False),
    decode_head=dict(
        type='UNetPlusPlusHead',
        in_channels=[32, 64, 128, 256, 512],
        in_index=[0, 1, 2, 3, 4],
        channels=32,
        num_convs=2,
        deep_supervision=False,
        ds_loss_weight=1.0,
        ds_inference='last',
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(
        type='FCNHead',
        in_channels=256,
        in_index=3,
        channels=64,
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
