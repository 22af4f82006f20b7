"""One-vs-one pairwise AUC surrogate over pixels (AUCSeg)."""
import math
from typing import Optional

import numpy as np
import torch
from mmseg.registry import MODELS
from torch import Tensor

from .base import LongTailLoss, PixelTargets, check_choice
from .online_stats import class_histogram

SURROGATES = ('square', 'hinge', 'exp')


@MODELS.register_module()
class AUCLoss(LongTailLoss):
    """Pixel-level one-vs-one AUC loss.

    `AUCSeg: AUC-oriented Pixel-level Long-tail Semantic Segmentation
    <https://arxiv.org/abs/2409.20398>`_ (Han et al., NeurIPS 2024). For
    each ordered pair ``(i, j)`` of classes present in the batch, the
    pixels of class i are positives and those of class j negatives, both
    scored by ``s_i = softmax(z)_i``; the surrogate ``l`` of the AUC is
    averaged over all (positive, negative) pixel pairs, then over the
    class pairs::

        L_ij = 1 / (n_i n_j) sum_{p: y_p = i} sum_{q: y_q = j}
               l(s_i(p) - s_i(q))
        L = sum_{i != j present} w_i L_ij / sum_{i != j present} w_i

    ``l(x) = (margin - x)^2`` ('square'), ``max(0, margin - x)``
    ('hinge') or ``exp(-x)`` ('exp'); ``w`` is ``class_weight`` (1 without).
    Each class pair weighs the same whatever its pixel counts, which is
    what makes the loss insensitive to the class imbalance. AUCSeg adds it
    to CE (``configs/_base_/losses/auc.py`` is that list). The authors' code
    scores with ``sigmoid(z_i)`` and halves the square surrogate; here the
    scores are the soft-max probabilities of the segmentation head.

    **Pairs.** With P the number of pixels of the batch (ignored ones
    included) and ``budget = num_pairs`` (default: the number of logits,
    ``N C H W``), all pairs are enumerated exactly when ``C P^2 <= budget``
    (small inputs: tests, tiny crops). Otherwise each forward draws, for
    every class c present, ``K = budget // C^2`` of its pixels uniformly
    with replacement, and pairs the k-th draw of class i with the k-th of
    class j: ``L_ij`` is estimated by the mean of K terms, an unbiased
    estimate, with at most ``budget`` pair terms in memory. The draws come
    from torch's default generator on the logits' device (reproducible
    under mmengine's ``randomness.seed``; ``ExactResumeHook`` reseeds it),
    or with ``seed`` from a private generator seeded from ``(seed, number
    of calls)``; that count is saved in the ``state_dict``, so a resumed
    run draws what the uninterrupted one would have.

    **Reduction.** The loss is a mean over class pairs, not over pixels. As
    the region losses do, :meth:`pixel_loss` returns a map that gives each
    pair term to its positive pixel (``l / (n_i n_j)`` per pair,
    ``w_i``-weighted), whose sum over pixels is the summed class-pair loss,
    exactly in value and gradient. So the shared base reduces it: 'sum' is
    ``sum_ij w_i L_ij``, 'mean' divides by the (``class_weight``-weighted)
    number of class pairs present (``avg_factor`` replaces it), 'none'
    returns the (N, H, W) map; mmseg's per-pixel ``weight`` scales the
    terms of its positive pixels; ``avg_non_ignore`` has no effect. Fewer
    than two classes present: 0 with a zero gradient. With several
    processes each one's loss is over its own batch (as in AUCSeg).

    Args:
        surrogate (str): 'square', 'hinge' or 'exp'. Default: 'square'
            (AUCSeg's).
        margin (float): ``margin`` of 'square' and 'hinge', > 0 (unused by
            'exp'). Default: 1.0.
        num_pairs (int, optional): most pair terms computed per forward
            (see above); ``None``: the number of logits. Default: None.
        seed (int, optional): seed of a private generator for the draws;
            None: torch's default generator. Default: None.
        loss_name (str): key in mmseg's loss dict, ``loss_*``.
        **kwargs: ``reduction``, ``class_weight``, ``loss_weight`` of
            :class:`LongTailLoss`.
    """

    def __init__(self,
                 surrogate: str = 'square',
                 margin: float = 1.0,
                 num_pairs: Optional[int] = None,
                 seed: Optional[int] = None,
                 loss_name: str = 'loss_auc',
                 **kwargs) -> None:
        super().__init__(loss_name=loss_name, **kwargs)
        self.surrogate = check_choice(surrogate, SURROGATES, 'surrogate')
        if not (math.isfinite(margin) and margin > 0):
            raise ValueError(f'margin must be finite and > 0, got {margin}')
        self.margin = float(margin)
        for field, value, low in (('num_pairs', num_pairs, 1),
                                  ('seed', seed, 0)):
            if value is not None and (isinstance(value, bool) or
                                      not isinstance(value, int)
                                      or value < low):
                raise ValueError(f'{field} must be None or an integer >= '
                                 f'{low}, got {value!r}')
        self.num_pairs, self.seed = num_pairs, seed
        self.seeded_calls = 0  # calls that drew from the ``seed`` generator

    # ------------------------------------------------------------ pieces
    def pair_loss(self, x: Tensor) -> Tensor:
        """The surrogate ``l(x)`` of score differences ``x``."""
        if self.surrogate == 'square':
            return (self.margin - x).square()
        if self.surrogate == 'hinge':
            return (self.margin - x).clamp_min(0.0)
        return torch.exp(-x)

    def generator(self, device) -> Optional[torch.Generator]:
        """The generator of this call's draws (None: torch's default)."""
        if self.seed is None:
            return None
        calls = self.seeded_calls
        words = [self.seed % 2**32, self.seed // 2**32 % 2**32,
                 calls % 2**32, calls // 2**32 % 2**32]
        state = np.random.SeedSequence(words).generate_state(2, np.uint32)
        self.seeded_calls += 1
        generator = torch.Generator(device=device)
        generator.manual_seed(int(state[1]) << 31 | int(state[0]) >> 1)
        return generator

    def exact_map(self, scores: Tensor, index: Tensor,
                  coef: Tensor) -> Tensor:
        """Per-pixel map (P,) from all (positive, negative) pairs.

        ``scores`` (C, P); ``coef`` (C, C): ``w_i / (n_i n_j)`` for the
        pairs kept, else 0.
        """
        classes = torch.arange(scores.shape[0], device=scores.device)
        onehot = (index.unsqueeze(0) == classes.unsqueeze(1)).to(
            scores.dtype)
        # terms[i, p, q] = l(s_i(p) - s_i(q))
        terms = self.pair_loss(scores.unsqueeze(2) - scores.unsqueeze(1))
        # products in the scores' precision, also under autocast
        with torch.autocast(scores.device.type, enabled=False):
            negatives = coef @ onehot  # [i, q] = sum_j coef_ij [y_q = j]
            per_class = torch.einsum('ipq,iq->ip', terms, negatives)
        return (onehot * per_class).sum(0)

    def sampled_map(self, scores: Tensor, index: Tensor, counts: Tensor,
                    coef: Tensor, draws: int) -> Tensor:
        """Per-pixel map (P,) from ``draws`` pixels drawn per class.

        ``coef`` (C, C): ``w_i`` for the pairs kept, else 0.
        """
        num_classes, num_pixels = scores.shape
        # pixels grouped by class (ignored ones, index C, last): the pixels
        # of class c are order[start_c : start_c + n_c]
        order = torch.sort(index, stable=True).indices
        start = torch.cumsum(counts, 0) - counts
        uniform = torch.rand((num_classes, draws),
                             generator=self.generator(scores.device),
                             device=scores.device, dtype=torch.float64)
        rank = (uniform * counts.unsqueeze(1)).long()
        rank = torch.minimum(rank, (counts - 1).clamp_min(0).unsqueeze(1))
        pixels = order[(start.unsqueeze(1) + rank).clamp_max(num_pixels - 1)]
        # drawn[i, c, k] = s_i(k-th pixel drawn for class c)
        drawn = scores[:, pixels.reshape(-1)].view(num_classes,
                                                   num_classes, draws)
        positive = drawn.diagonal(0, 0, 1).t()  # [i, k] = s_i(pixels[i, k])
        terms = self.pair_loss(positive.unsqueeze(1) - drawn)
        per_draw = (terms * (coef / draws).unsqueeze(2)).sum(1)  # (C, K)
        return scores.new_zeros(num_pixels).index_add(
            0, pixels.reshape(-1), per_draw.reshape(-1))

    # --------------------------------------------------- LongTailLoss API
    def pixel_loss(self, cls_score: Tensor, target: PixelTargets) -> Tensor:
        num_classes = cls_score.shape[1]
        valid = target.valid.unsqueeze(1)
        # zeroed before the soft-max: inf / NaN logits at ignored pixels
        # reach neither the value nor the gradient
        probs = cls_score.masked_fill(~valid, 0.0).softmax(1)
        scores = probs.movedim(1, 0).reshape(num_classes, -1)
        index = target.index.reshape(-1)
        counts = class_histogram(index, num_classes)
        present = counts > 0
        pairs = (present.unsqueeze(1) & present.unsqueeze(0)
                 & ~torch.eye(num_classes, dtype=torch.bool,
                              device=counts.device))
        weight = self.class_weights(cls_score)
        coef = pairs.to(scores.dtype)
        if weight is not None:
            coef = coef * weight.unsqueeze(1)
        # the denominator of 'mean'; the targets live for this one call
        target.auc_terms = coef.sum()
        num_pixels = scores.shape[1]
        budget = cls_score.numel() if self.num_pairs is None \
            else self.num_pairs
        if num_classes * num_pixels**2 <= budget:
            n = counts.to(scores.dtype)
            size = (n.unsqueeze(1) * n.unsqueeze(0)).clamp_min(1.0)
            pixel_map = self.exact_map(scores, index, coef / size)
        else:
            draws = budget // num_classes**2
            if draws < 1 and self.num_pairs is not None:
                raise ValueError(
                    f'AUCLoss: num_pairs={self.num_pairs} is below the '
                    f'{num_classes**2} (C^2) pair terms of one draw per '
                    'class; raise num_pairs')
            pixel_map = self.sampled_map(scores, index, counts, coef,
                                         max(draws, 1))
        return pixel_map.view(target.label.shape)

    def default_avg_factor(self, cls_score: Tensor, target: PixelTargets):
        return target.auc_terms

    # ------------------------------------------------------------- state
    def get_extra_state(self) -> dict:
        return dict(seeded_calls=self.seeded_calls)

    def set_extra_state(self, state) -> None:
        if isinstance(state, dict):
            self.seeded_calls = int(state.get('seeded_calls', 0))

    def extra_repr(self) -> str:
        return (f'surrogate={self.surrogate!r}, margin={self.margin}, '
                f'num_pairs={self.num_pairs}, seed={self.seed}, ' +
                super().extra_repr())
