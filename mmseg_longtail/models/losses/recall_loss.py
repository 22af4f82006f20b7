"""Recall loss: cross-entropy weighted by each class's miss rate."""
import torch
from mmseg.registry import MODELS
from torch import Tensor

from .base import LongTailLoss, PixelTargets, check_choice
from .online_stats import (OnlineClassState, class_histogram, label_histogram,
                           sum_over_processes)
from .shifted_cross_entropy import shifted_cross_entropy

RECALL_MODES = ('batch', 'running')


@MODELS.register_module()
class RecallLoss(OnlineClassState, LongTailLoss):
    """Recall loss.

    `Striking the Right Balance: Recall Loss for Semantic Segmentation
    <https://arxiv.org/abs/2106.14917>`_ (Tian et al., ICRA 2022)::

        l = -(1 - R_y) * w_y * log p_y,   R_c = TP_c / (TP_c + FN_c)

    ``R_c`` is the recall of class ``c``: of the labelled pixels of class
    ``c``, the share the model's argmax predicts as ``c`` (a tie for the
    largest logit counts as predicted); ``w`` is
    ``class_weight`` (default 1). Poorly recalled classes weigh up to 1
    (plain CE), well recalled ones down to 0, so the loss moves between
    CE and an inverse-frequency-like weighting as the model learns. The
    weights are constants (no gradient through the recall). 'mean' divides
    by the pixel count (the sum of ``class_weight``), not by the sum of the
    recall weights, as the authors' code does.

    ``recall='batch'`` (the paper): ``R`` from the current batch. A class
    without labelled pixels in the batch has no pixel to weigh; its weight
    is defined as 1.

    ``recall='running'``: an exponential running average over the training
    iterations, ``R <- (1 - momentum) * R + momentum * R_batch`` for the
    classes labelled in the batch (``momentum`` is the weight of the new
    batch, as in BatchNorm); a class absent from the batch keeps its value;
    the first batch that labels a class sets it. A class never labelled
    yet has weight 1. The average is held in the persistent buffers
    ``running_recall`` (float, per class) and ``recall_seen`` (bool, per
    class): checkpoints save them and ``--resume`` continues from them. It
    is updated at training forwards only (``loss.training``), including the
    current batch before the weights are taken; in eval mode the stored
    average is used as it is.

    In a distributed run (``torch.distributed`` initialised) the per-class
    true-positive and ground-truth counts are summed over the processes at
    each training forward before the recall is computed (both modes), so
    the recall is that of the global batch and every process holds the
    same average. Ignored pixels count in no statistic.

    Args:
        recall (str): ``'batch'`` (default) or ``'running'``.
        momentum (float): weight of the new batch in the running average,
            in (0, 1]. Default: 0.1. Used with ``recall='running'``.
        loss_name (str): key in mmseg's loss dict, ``loss_*``.
        **kwargs: ``reduction``, ``class_weight``, ``loss_weight``,
            ``avg_non_ignore`` of :class:`LongTailLoss`.
    """

    def __init__(self,
                 recall: str = 'batch',
                 momentum: float = 0.1,
                 loss_name: str = 'loss_recall',
                 **kwargs) -> None:
        super().__init__(loss_name=loss_name, **kwargs)
        self.recall = check_choice(recall, RECALL_MODES, 'recall')
        if not 0 < momentum <= 1:
            raise ValueError(f'momentum must lie in (0, 1], got {momentum}')
        self.momentum = float(momentum)
        if self.recall == 'running':
            self.register_class_state('running_recall', torch.float32)
            self.register_class_state('recall_seen', torch.bool)

    def batch_counts(self, cls_score: Tensor, target: PixelTargets):
        """Per-class true positives and labelled pixels of the batch (int64,
        summed over the processes when training distributed)."""
        # argmax == label as "the label's logit is the largest": two cheap
        # reductions instead of argmax's (slow on CPU)
        z = cls_score.detach()
        label = target.label.masked_fill(~target.valid, 0).unsqueeze(1)
        right = (z.gather(1, label) >= z.amax(1, keepdim=True)).squeeze(1)
        hit = torch.where(right & target.valid, target.index,
                          target.num_classes)
        counts = torch.stack([class_histogram(hit, target.num_classes),
                              label_histogram(target)])
        if self.training:
            sum_over_processes(counts)
        return counts[0], counts[1]

    @torch.no_grad()
    def recall_values(self, cls_score: Tensor,
                      target: PixelTargets) -> Tensor:
        """Per-class recall ``R`` (C,) that weighs this forward (0 for a
        class without labelled pixels, i.e. weight 1)."""
        tp, gt = self.batch_counts(cls_score, target)
        present = gt > 0
        dtype = cls_score.dtype
        recall = tp.to(dtype) / gt.clamp_min(1).to(dtype)
        if self.recall == 'batch':
            return recall
        recall = recall.float()
        running = self.class_state('running_recall', cls_score)
        seen = self.class_state('recall_seen', cls_score)
        if self.training:
            blended = torch.lerp(running, recall, self.momentum)
            running.copy_(torch.where(present,
                                      torch.where(seen, blended, recall),
                                      running))
            seen |= present
        return torch.where(seen, running, 0.0).to(cls_score.dtype)

    def pixel_loss(self, cls_score: Tensor, target: PixelTargets) -> Tensor:
        weights = 1.0 - self.recall_values(cls_score, target)
        extra = self.class_weights(cls_score)
        if extra is not None:
            weights = weights * extra
        # the weighted CE of F.cross_entropy(weight=...) in the fused form
        # of BalancedSoftmaxLoss with a zero shift: one logits-sized buffer,
        # the log-softmax and its gradient in place (same values)
        return shifted_cross_entropy(
            cls_score, target, class_weight=weights)

    def extra_repr(self) -> str:
        return (f'recall={self.recall!r}, momentum={self.momentum}, ' +
                super().extra_repr())
