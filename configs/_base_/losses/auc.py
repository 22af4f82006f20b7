# AUCSeg (Han et al., NeurIPS 2024): CE + the one-vs-one pixel AUC loss, as
# mmseg's loss list (both logged: loss_ce, loss_auc). The AUC term averages
# the square surrogate (1 - (s_i(p) - s_i(q)))^2 over (class-i pixel p,
# class-j pixel q) pairs, then over the class pairs present, on pixels drawn
# per class (at most num_pairs pair terms; default: as many as logits).
# loss_weight=2.0 matches the authors' configs (weight 4 on a halved square
# surrogate); they score with sigmoid(z_i), here the soft-max probabilities
# are the scores. Their tail-class memory bank (a pasting augmentation) is
# not part of the plugin (docs/losses.md says why). Needs no class counts.
loss_decode = [
    dict(
        type='CrossEntropyLoss',
        use_sigmoid=False,
        loss_weight=1.0,
        avg_non_ignore=True),
    dict(
        type='AUCLoss',
        surrogate='square',
        margin=1.0,
        num_pairs=None,
        loss_weight=2.0),
]
