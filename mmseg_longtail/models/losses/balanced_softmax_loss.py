"""Balanced Softmax / logit-adjusted cross-entropy."""
from mmseg.registry import MODELS
from torch import Tensor

from .base import LongTailLoss, PixelTargets, log_prior, per_class
from .shifted_cross_entropy import (plain_cross_entropy,
                                    shifted_cross_entropy)


@MODELS.register_module()
class BalancedSoftmaxLoss(LongTailLoss):
    """Balanced Softmax (BMS) and the logit-adjusted loss.

    `Balanced Meta-Softmax for Long-Tailed Visual Recognition
    <https://arxiv.org/abs/2007.10740>`_ (Ren et al., NeurIPS 2020) for
    ``tau=1``; `Long-tail learning via logit adjustment
    <https://arxiv.org/abs/2007.07314>`_ (Menon et al., ICLR 2021) for the
    general ``tau``::

        l = CE(z + tau * log(pi), y),   pi_c = n_c / sum(n)

    Training only: inference uses the raw logits ``z`` (the adjustment lives
    in the loss, so nothing changes at test time). ``tau=0`` is plain CE.
    Zero counts are clamped to 1 so that ``log(pi)`` stays finite.

    Args:
        class_counts (list | str): per-class counts or statistics JSON.
        tau (float): strength of the adjustment. Default: 1.0.
        loss_name (str): key in mmseg's loss dict, ``loss_*``.
        **kwargs: ``count_type``, ``reduction``, ``class_weight``,
            ``loss_weight``, ``avg_non_ignore`` of :class:`LongTailLoss`.
    """

    requires_counts = True

    def __init__(self,
                 class_counts=None,
                 tau: float = 1.0,
                 loss_name: str = 'loss_bms',
                 **kwargs) -> None:
        super().__init__(
            class_counts=class_counts, loss_name=loss_name, **kwargs)
        self.tau = float(tau)
        self.register_class_buffer('log_prior', log_prior(self.class_counts))

    def adjusted_logits(self, cls_score: Tensor) -> Tensor:
        """``z + tau * log(pi)`` (``z`` itself when ``tau == 0``)."""
        if self.tau == 0:
            return cls_score
        return cls_score + per_class(self.tau * self.log_prior, cls_score)

    def pixel_loss(self, cls_score: Tensor, target: PixelTargets) -> Tensor:
        weight = self.class_weights(cls_score)
        if self.tau == 0:  # plain CE, mmseg's bit for bit
            return plain_cross_entropy(cls_score, target, weight)
        # the values of F.cross_entropy(self.adjusted_logits(z), ...) in
        # one fused pass (no separate adjusted-logits tensor)
        return shifted_cross_entropy(
            cls_score, target,
            per_class(self.tau * self.log_prior, cls_score),
            class_weight=weight)

    def extra_repr(self) -> str:
        return f'tau={self.tau}, ' + super().extra_repr()
