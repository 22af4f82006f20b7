# Recall loss (Tian et al., ICRA 2022): CE weighted per class by 1 - R_c,
# R_c the recall of class c from the argmax predictions (no gradient through
# it). recall='batch' is the paper's per-batch recall; 'running' averages it
# over iterations (momentum = weight of the new batch) in a buffer that
# checkpoints save. Needs no class counts. Not tuned here.
loss_decode = dict(
    type='RecallLoss',
    recall='batch',
    momentum=0.1,
    loss_weight=1.0,
    avg_non_ignore=True)
