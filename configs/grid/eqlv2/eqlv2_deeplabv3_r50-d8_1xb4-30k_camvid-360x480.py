# EQLv2 loss, DLV3, CamVid: one cell of the PAT paper grid
# (written by tools/misc/generate_grid_configs.py from
# configs/grid/paper_grid.py; edit the spec, not this file.)
_base_ = [
    '../../_base_/models/deeplabv3.py',
    '../../_base_/datasets/camvid.py',
    '../../_base_/losses/eqlv2.py',
    '../../_base_/default_runtime.py',
    '../../_base_/schedules/schedule_30k.py',
]
# The loss replaces the decode head's CE; the auxiliary head keeps CE.
model = dict(
    data_preprocessor=dict(size=_base_.crop_size),
    decode_head=dict(
        num_classes=_base_.num_classes,
        loss_decode=dict(
            _base_.loss_decode,
            _delete_=True)),
    auxiliary_head=dict(num_classes=_base_.num_classes),
)
