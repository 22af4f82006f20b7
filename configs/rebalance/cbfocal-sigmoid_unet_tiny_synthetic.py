# CB-Focal with the CB paper's sigmoid focal base (Cui et al., CVPR 2019):
# w_y sum_c (1 - q_c)^gamma (-log q_c). The grid's CB-Focal uses the softmax
# focal base (base='focal'), which fits a softmax segmentation head.
_base_ = [
    '../quickstart/unet_tiny_synthetic_ce.py',
    '../_base_/losses/cbfocal_sigmoid.py'
]
model = dict(decode_head=dict(loss_decode=dict(
    _base_.loss_decode, class_counts='work_dirs/synthetic_stats.json',
    beta='median', _delete_=True)))
