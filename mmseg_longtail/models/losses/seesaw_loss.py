"""Seesaw loss for dense prediction."""
import math

import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor

from .base import LongTailLoss, PixelTargets
from .online_stats import OnlineClassState, label_histogram, sum_over_processes
from .shifted_cross_entropy import (plain_cross_entropy,
                                    shifted_cross_entropy)


@MODELS.register_module()
class SeesawLoss(OnlineClassState, LongTailLoss):
    """Seesaw loss, per pixel.

    `Seesaw Loss for Long-Tailed Instance Segmentation
    <https://arxiv.org/abs/2008.10032>`_ (Wang et al., CVPR 2021), applied
    to each labelled pixel as a sample (no objectness channels: the
    logits are the C classes of a segmentation head). For a pixel of class
    ``i`` the logit of every other class ``j`` is raised by ``log S_ij``::

        l = -w_i log( e^z_i / (e^z_i + sum_{j != i} S_ij e^z_j) )
        S_ij = M_ij * C_ij
        M_ij = (N_j / N_i)^p  if N_j < N_i else 1      (mitigation)
        C_ij = (s_j / s_i)^q  if s_j > s_i else 1      (compensation)

    ``N`` are cumulative pixel counts of the classes over training (the
    current batch included), ``s = softmax(z)`` (detached: the factors are
    constants, as in the paper) and ``w`` is ``class_weight`` (default 1).
    Mitigation lowers the penalty a frequent class's pixels put on a rarer
    class's logit; compensation restores it for a class the model wrongly
    scores above the true one. Computed in log space
    (``log S_ij = p log min(1, N_j / N_i) + q max(0, log s_j -
    log max(s_i, eps))``, the first term a (C, C) table gathered by each
    pixel's label): no overflow, no loop. ``p = q = 0`` is CE exactly.

    ``N`` is the persistent int64 buffer ``cum_counts`` (per class): the
    labelled pixels of each training forward (``loss.training``) are added
    before the loss is computed, summed over the processes in a
    distributed run (``torch.distributed`` initialised), so every process
    holds the same counts; checkpoints save it and ``--resume`` continues
    from it. Ignored pixels are never counted. Counts are clamped to at
    least 1 in the ratio (a class not seen yet counts as seen once). In
    eval mode the stored counts are used as they are.

    Args:
        p (float): mitigation exponent, >= 0. Default: 0.8.
        q (float): compensation exponent, >= 0. Default: 2.0.
        eps (float): smallest ``s_i`` in the compensation ratio, > 0
            (bounds the factor when the true class has almost no
            probability). Default: 0.01 (mmdet's).
        loss_name (str): key in mmseg's loss dict, ``loss_*``.
        **kwargs: ``reduction``, ``class_weight``, ``loss_weight``,
            ``avg_non_ignore`` of :class:`LongTailLoss`.
    """

    def __init__(self,
                 p: float = 0.8,
                 q: float = 2.0,
                 eps: float = 1e-2,
                 loss_name: str = 'loss_seesaw',
                 **kwargs) -> None:
        super().__init__(loss_name=loss_name, **kwargs)
        for field, value in (('p', p), ('q', q)):
            if not value >= 0:
                raise ValueError(f'{field} must be >= 0, got {value}')
        if not eps > 0:
            raise ValueError(f'eps must be > 0, got {eps}')
        self.p, self.q, self.eps = float(p), float(q), float(eps)
        self.register_class_state('cum_counts', torch.long)

    @torch.no_grad()
    def log_mitigation(self, cls_score: Tensor,
                       target: PixelTargets) -> Tensor:
        """``log M`` as a (C, C) table, row ``i`` the pixel's class, after
        adding this training batch's pixels to the counts. The ratios are
        taken in float64 from the integer counts: exact, so counts scaled
        by a common factor give the same table."""
        counts = self.class_state('cum_counts', cls_score)
        if self.training:
            counts += sum_over_processes(label_histogram(target))
        n = counts.clamp_min(1).double()
        ratio = (n.unsqueeze(0) / n.unsqueeze(1)).clamp_max(1.0)
        return (self.p * ratio.log()).to(cls_score.dtype)

    @torch.no_grad()
    def log_seesaw(self, cls_score: Tensor, target: PixelTargets):
        """``log S_ij`` (N, C, H, W) for each pixel's class ``i`` (0 at the
        true class and at ignored pixels), or None when ``p = q = 0``.

        One fresh logits-sized buffer, written in place (the compensation
        from the log-softmax, then the mitigation rows added by one batched
        matrix product); :meth:`pixel_loss` then adds the
        logits into it and the fused cross-entropy takes it over."""
        table = self.log_mitigation(cls_score, target)
        if self.p == 0 and self.q == 0:
            return None
        n, c = cls_score.shape[:2]
        if self.q > 0:
            log_s = F.log_softmax(cls_score.detach(), 1).contiguous()
            true = target.label.masked_fill(~target.valid, 0).unsqueeze(1)
            log_true = log_s.gather(1, true).clamp_min(math.log(self.eps))
            # +inf at ignored pixels: their compensation clamps to 0
            log_true.masked_fill_(~target.valid.unsqueeze(1), math.inf)
            log_s.sub_(log_true).clamp_min_(0)
            scale = self.q
        else:
            log_s = cls_score.new_zeros(cls_score.shape)
            scale = 1.0
        if self.p > 0:
            # row i of the table at each pixel of class i, as one batched
            # product with the one-hot labels (C + 1, H W): each entry is
            # one table value times 1 plus zeros, exact, and several times
            # faster than gathering the rows; ignored pixels take the
            # extra zero column (index C). beta applies q to the
            # compensation in the same pass.
            table_t = torch.cat([table, table.new_zeros(1, c)]).t()
            onehot = cls_score.new_zeros((n, c + 1, log_s[0, 0].numel()))
            onehot.scatter_(1, target.index.view(n, 1, -1), 1.0)
            log_s.view(n, c, -1).baddbmm_(
                table_t.expand(n, c, c + 1), onehot, beta=scale)
        elif scale != 1.0:
            log_s.mul_(scale)
        return log_s

    def pixel_loss(self, cls_score: Tensor, target: PixelTargets) -> Tensor:
        # no autocast: the mitigation's batched product stays in fp32
        with torch.autocast(cls_score.device.type, enabled=False):
            log_s = self.log_seesaw(cls_score, target)
        if log_s is None:
            return plain_cross_entropy(cls_score, target,
                                       self.class_weights(cls_score))
        # F.cross_entropy(cls_score + log_s, ...) fused: the sum is written
        # into log_s (times 1: exact), the log-softmax overwrites it and the
        # backward pass turns it into the gradient in place
        return shifted_cross_entropy(
            cls_score, target, log_s, scale=cls_score.new_ones(()),
            class_weight=self.class_weights(cls_score))

    def extra_repr(self) -> str:
        return (f'p={self.p}, q={self.q}, eps={self.eps}, ' +
                super().extra_repr())
