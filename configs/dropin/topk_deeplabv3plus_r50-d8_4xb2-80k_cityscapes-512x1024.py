# Drop-in: TopK CE, cross-entropy of the 10% hardest pixels of each image,
# on mmseg's own DeepLabV3+ Cityscapes config, which this repository did
# not write. Only the decode head's loss changes; `_delete_=True` drops the
# CrossEntropyLoss arguments the base sets there (the auxiliary head keeps CE).
# The same three statements add the loss to any mmseg config.
_base_ = 'mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py'
custom_imports = dict(imports=['mmseg_longtail'], allow_failed_imports=False)
model = dict(
    decode_head=dict(
        loss_decode=dict(
            _delete_=True,
            type='TopKCrossEntropyLoss',
            k=10.0,
            avg_non_ignore=True,
            loss_weight=1.0)))
