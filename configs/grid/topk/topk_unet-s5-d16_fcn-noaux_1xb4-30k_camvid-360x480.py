# TopK CE loss, UNet, CamVid: one cell of the PAT paper grid
# (written by tools/misc/generate_grid_configs.py from
# configs/grid/paper_grid.py; edit the spec, not this file.)
_base_ = [
    '../../_base_/models/unet.py',
    '../../_base_/datasets/camvid.py',
    '../../_base_/losses/topk_ce.py',
    '../../_base_/default_runtime.py',
    '../../_base_/schedules/schedule_30k.py',
]
# The loss replaces the decode head's CE; no auxiliary head, as in the
# papers' networks (the loss alone trains the encoder).
model = dict(
    # pad crops up to multiples of 16, as the model needs
    data_preprocessor=dict(
        size=tuple(-(-s // 16) * 16 for s in _base_.crop_size)),
    decode_head=dict(
        num_classes=_base_.num_classes,
        loss_decode=dict(
            _base_.loss_decode,
            _delete_=True)),
    auxiliary_head=None,
)
