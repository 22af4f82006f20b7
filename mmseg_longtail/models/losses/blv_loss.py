"""BLV: balancing logit variation."""
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from mmseg.registry import MODELS
from torch import Tensor

from .base import LongTailLoss, PixelTargets, check_choice, per_class
from .shifted_cross_entropy import (plain_cross_entropy,
                                    shifted_cross_entropy)

# fixed number of independently seeded blocks of a CPU draw
NOISE_CHUNKS = 4
# below this many elements threads cost more than they save
PARALLEL_MIN_NUMEL = 1 << 18
_POOL = {}


class _AddScaledNoise(torch.autograd.Function):
    """``z + noise * scale`` written into the fresh ``noise`` buffer: one
    pass, no new logits-sized tensor; the gradient w.r.t. ``z`` is the
    identity (the noise is a constant)."""

    @staticmethod
    def forward(ctx, z: Tensor, noise: Tensor, scale: Tensor) -> Tensor:
        ctx.mark_dirty(noise)
        return torch.addcmul(z, noise, scale, out=noise)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad, None, None


def _noise_pool() -> ThreadPoolExecutor:
    """Worker threads for CPU noise draws, re-created after a fork."""
    pid = os.getpid()
    if _POOL.get('pid') != pid:
        _POOL.update(pid=pid, pool=ThreadPoolExecutor(
            max_workers=NOISE_CHUNKS - 1, thread_name_prefix='blv_noise'))
    return _POOL['pool']


@MODELS.register_module()
class BLVLoss(LongTailLoss):
    """Balancing Logit Variation loss (training only).

    `Balancing Logit Variation for Long-tailed Semantic Segmentation
    <https://arxiv.org/abs/2306.02061>`_ (Wang et al., CVPR 2023)::

        z' = z + v * r_c,   r_c = f_c / max(f),   f_c = log(sum n) - log(n_c)
        l = CE(z', y)

    so rarer classes get larger logit variation. ``v`` is drawn afresh for
    every element of ``z`` from ``X ~ Normal(0, sigma)`` (``distribution=
    'gaussian'``) or ``X ~ Uniform(-sigma, sigma)`` (``'uniform'``),
    clamped to [-1, 1]; ``mode='official'`` takes ``|clamp(X)|`` (the
    authors' code, sigma=4, always a non-negative offset) and ``mode=
    'paper'`` keeps the sign (the zero-mean perturbation the paper
    describes). ``sigma=0`` means no variation (plain CE). Inference uses
    the raw logits. Zero counts are clamped to 1.

    The noise is drawn in place, on the logits' device and in their dtype,
    from torch's default generator (reproducible under ``torch.manual_seed``
    / mmengine's ``randomness.seed``; in DDP each rank draws its own); see
    :meth:`draw_variation` for the CPU path.

    Args:
        class_counts (list | str): per-class counts or statistics JSON.
        sigma (float): scale of ``X``, >= 0. Default: 4.0.
        mode (str): 'official' or 'paper'. Default: 'official'.
        distribution (str): 'gaussian' or 'uniform'. Default: 'gaussian'.
        loss_name (str): key in mmseg's loss dict, ``loss_*``.
        **kwargs: ``count_type``, ``reduction``, ``class_weight``,
            ``loss_weight``, ``avg_non_ignore`` of :class:`LongTailLoss`.
    """

    requires_counts = True

    def __init__(self,
                 class_counts=None,
                 sigma: float = 4.0,
                 mode: str = 'official',
                 distribution: str = 'gaussian',
                 loss_name: str = 'loss_blv',
                 **kwargs) -> None:
        super().__init__(
            class_counts=class_counts, loss_name=loss_name, **kwargs)
        if not sigma >= 0:
            raise ValueError(f'sigma must be >= 0, got {sigma}')
        self.sigma = float(sigma)
        self.mode = check_choice(mode, ('official', 'paper'), 'mode')
        self.distribution = check_choice(distribution,
                                         ('gaussian', 'uniform'),
                                         'distribution')
        n = np.maximum(self.class_counts, 1.0)
        f = np.log(n.sum()) - np.log(n)
        # a single class (f = 0) gets no variation instead of 0/0
        self.register_class_buffer('variation_scale',
                                   f / max(f.max(), np.finfo(float).tiny))

    def _sample_(self, out: Tensor, generator=None) -> None:
        """Fill ``out`` in place with ``v`` (before the class scale)."""
        official = self.mode == 'official'
        if self.distribution == 'gaussian':
            out.normal_(0.0, self.sigma, generator=generator)
            if official:
                out.abs_()
        elif official:
            # |Uniform(-s, s)| = Uniform(0, s)
            out.uniform_(0.0, self.sigma, generator=generator)
        else:
            out.uniform_(-self.sigma, self.sigma, generator=generator)
        if self.distribution == 'gaussian' or self.sigma > 1.0:
            out.clamp_(0.0 if official else -1.0, 1.0)

    def draw_noise(self, like: Tensor) -> Tensor:
        """Fresh ``v`` (before the class scale) of the shape, dtype and
        device of ``like``.

        On CUDA this is one in-place draw. torch's CPU generator is serial
        (a logits-sized draw costs about half of CE's forward + backward),
        so on CPU the tensor is cut into ``NOISE_CHUNKS`` fixed blocks, each
        drawn by its own generator seeded from torch's default generator,
        in parallel threads: the result depends on the seed only, not on
        the number of threads.
        """
        v = torch.empty_like(like, memory_format=torch.contiguous_format)
        if v.device.type != 'cpu':
            self._sample_(v)
            return v
        flat = v.view(-1)
        seeds = torch.randint(2**62, (NOISE_CHUNKS, )).tolist()
        bounds = [flat.numel() * i // NOISE_CHUNKS
                  for i in range(NOISE_CHUNKS + 1)]

        def fill(first: int, step: int) -> None:
            for i in range(first, NOISE_CHUNKS, step):
                lo, hi = bounds[i], bounds[i + 1]
                if hi > lo:
                    gen = torch.Generator().manual_seed(seeds[i])
                    self._sample_(flat[lo:hi], gen)

        # as many threads as torch may use; each block keeps its own seed
        workers = min(NOISE_CHUNKS, torch.get_num_threads())
        if flat.numel() < PARALLEL_MIN_NUMEL:
            workers = 1
        jobs = [_noise_pool().submit(fill, w, workers)
                for w in range(1, workers)]
        fill(0, workers)
        for job in jobs:
            job.result()
        return v

    def draw_variation(self, like: Tensor) -> Tensor:
        """Fresh offsets ``v * r_c`` of the shape of ``like`` (N, C, ...)."""
        return self.draw_noise(like).mul_(
            per_class(self.variation_scale, like))

    def perturbed_logits(self, cls_score: Tensor) -> Tensor:
        """``z + v * r_c`` (``z`` itself when ``sigma == 0``)."""
        if self.sigma == 0:
            return cls_score
        return _AddScaledNoise.apply(
            cls_score, self.draw_noise(cls_score),
            per_class(self.variation_scale, cls_score))

    def pixel_loss(self, cls_score: Tensor, target: PixelTargets) -> Tensor:
        weight = self.class_weights(cls_score)
        if self.sigma == 0:  # plain CE, mmseg's bit for bit
            return plain_cross_entropy(cls_score, target, weight)
        # the values of F.cross_entropy(self.perturbed_logits(z), ...) (the
        # same draw) in one fused pass: z + v * r_c is written into the
        # noise buffer, the log-softmax over it, and the backward pass
        # turns it into the gradient
        return shifted_cross_entropy(
            cls_score, target, self.draw_noise(cls_score),
            scale=per_class(self.variation_scale, cls_score),
            class_weight=weight)

    def extra_repr(self) -> str:
        return (f'sigma={self.sigma}, mode={self.mode!r}, '
                f'distribution={self.distribution!r}, ' +
                super().extra_repr())
