"""Top-k cross-entropy: CE over the hardest k % of the labelled pixels."""
import math

import torch
from mmseg.registry import MODELS
from torch import Tensor

from .base import LongTailLoss, PixelTargets
from .shifted_cross_entropy import shifted_cross_entropy


@MODELS.register_module()
class TopKCrossEntropyLoss(LongTailLoss):
    """Cross-entropy over the ``k`` % hardest labelled pixels.

    Online hard pixel mining with a fixed share instead of OHEM's
    probability threshold: the TopK loss of `Loss odyssey in medical image
    segmentation <https://arxiv.org/abs/2005.13449>`_ (Ma et al., MedIA
    2021), the bootstrapped cross-entropy of `Bridging Category-level and
    Instance-level Semantic Image Segmentation
    <https://arxiv.org/abs/1605.06885>`_ (Wu, Shen & van den Hengel,
    2016)::

        l = w_y * (-log p_y) * [pixel among the K hardest],
        K = ceil(k / 100 * n_valid)

    Hardness is the unweighted CE ``-log p_y``; ``n_valid`` counts the
    labelled pixels of each image (``per_image=True``, default) or of the
    batch (``per_image=False``), and ties at the K-th value are broken by
    pixel order (a stable sort). ``w`` is ``class_weight`` (default 1),
    applied after the selection. ``k=100`` is CE over the labelled pixels
    (``avg_non_ignore=True``).

    Reductions follow :class:`LongTailLoss` with the selected pixels in
    place of the labelled ones: 'none' returns the (N, H, W) map, zero at
    unselected and ignored pixels; 'sum' its sum; 'mean' divides by the
    number of selected pixels, or with ``class_weight`` by the sum of their
    class weights (mmseg's weighted mean over the selection).
    ``avg_non_ignore`` has no effect (selected pixels are labelled ones).
    ``avg_factor`` and mmseg's per-pixel ``weight`` act as usual (``weight``
    after the selection). The selection is one partial sort (``topk``) of
    the detached per-pixel CE: no loop, no host sync; no gradient reaches the
    unselected pixels.

    Args:
        k (float): share of the labelled pixels kept, in percent, in
            (0, 100]. Default: 10.0.
        per_image (bool): select within each image (default) or within the
            whole batch.
        loss_name (str): key in mmseg's loss dict, ``loss_*``.
        **kwargs: ``reduction``, ``class_weight``, ``loss_weight``,
            ``avg_non_ignore`` of :class:`LongTailLoss`.
    """

    def __init__(self,
                 k: float = 10.0,
                 per_image: bool = True,
                 loss_name: str = 'loss_topk',
                 **kwargs) -> None:
        super().__init__(loss_name=loss_name, **kwargs)
        if isinstance(k, bool) or not 0 < k <= 100:
            raise ValueError(f'k must be a percentage in (0, 100], got {k!r}')
        if not isinstance(per_image, bool):
            raise ValueError(f'per_image must be True or False, got '
                             f'{per_image!r}')
        self.k = float(k)
        self.per_image = per_image

    def selection(self, ce: Tensor, target: PixelTargets) -> Tensor:
        """Bool mask (N, H, W) of the ``K`` hardest labelled pixels of each
        image (or of the batch)."""
        rows = ce.shape[0] if self.per_image else 1
        valid = target.valid.reshape(rows, -1)
        # CE >= 0, so -1 ranks every unlabelled pixel behind the labelled;
        # NaN ranks first (as in a descending sort)
        hardness = torch.where(
            valid,
            ce.detach().reshape(rows, -1).nan_to_num(nan=math.inf), -1.0)
        # exact for integer results: n * k is exact and so is n * k / 100
        keep = torch.ceil(valid.sum(1, keepdim=True).double() * self.k /
                          100).long()
        # the K-th largest value t from one partial sort (topk) of at most
        # K_max = ceil(k % of the pixels) values, not a full sort: the
        # selection is every pixel above t, then the pixels equal to t in
        # pixel order until K are taken (the stable sort's tie break)
        n = hardness.shape[1]
        k_max = min(n, math.ceil(n * self.k / 100))
        top = hardness.topk(k_max, dim=1).values
        kth = top.gather(1, (keep - 1).clamp_min(0))
        above = hardness > kth
        tied = hardness == kth
        room = keep - above.sum(1, keepdim=True)
        selected = above | (tied & (tied.cumsum(1) <= room))
        return (selected & valid).view(ce.shape)

    def pixel_loss(self, cls_score: Tensor, target: PixelTargets) -> Tensor:
        # F.cross_entropy(reduction='none') in the fused form of
        # BalancedSoftmaxLoss with a zero shift (same values, one
        # logits-sized buffer, the gradient written in place)
        ce = shifted_cross_entropy(cls_score, target)
        selected = self.selection(ce, target)
        # the mean's denominator counts the selection; the targets object
        # lives for this one forward call
        target.topk_selected = selected
        weights = self.class_weights(cls_score)
        if weights is not None:
            ce = ce * target.gather(weights)
        return torch.where(selected, ce, 0.0)

    def default_avg_factor(self, cls_score: Tensor, target: PixelTargets):
        selected = target.topk_selected
        weights = self.mean_class_weights(cls_score)
        if weights is None:
            return selected.sum().to(cls_score.dtype)
        return torch.where(selected, target.gather(weights), 0.0).sum()

    def extra_repr(self) -> str:
        return (f'k={self.k}, per_image={self.per_image}, ' +
                super().extra_repr())
