"""Per-pixel cross-entropy of shifted logits in one fused autograd function.

Balanced Softmax adds a per-class constant to the logits before the
cross-entropy, BLV a fresh noise tensor, Seesaw a per-pixel log factor;
Recall and TopK CE use it unshifted. Written with stock operations that
costs a logits-sized tensor for ``z + shift``, another for the log-softmax,
and in the backward pass two more (the one-hot gradient of the NLL and the
log-softmax gradient): on CPU Balanced Softmax took 1.31x and BLV 1.71x the
time of mmseg's ``CrossEntropyLoss``.

:func:`shifted_cross_entropy` computes the same per-pixel values with one
logits-sized buffer: ``z + shift`` is written into a fresh tensor (for BLV
into the noise buffer itself), the log-softmax overwrites it in place, and
the backward pass turns that saved buffer into the gradient in place::

    d loss / d z = g * w_y * (softmax(z + shift) - onehot(y))

(``g`` the incoming per-pixel gradient, ``w_y`` the pixel's class weight,
0 at ignored pixels). The forward values are those of
``F.cross_entropy(z + shift, y, weight, reduction='none', ignore_index)``
bit for bit (the same log-softmax kernel and the same products); the
gradient equals autograd's up to float rounding.

Reusing the saved buffer means the graph can be back-propagated once only
for large inputs (``retain_graph=True`` and a second backward raise a clear
error); below :data:`INPLACE_MIN_NUMEL` elements, where a fresh tensor
costs nothing, the gradient is a new tensor and repeated backward passes
(``torch.autograd.gradcheck``) work.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

# from this many logits on, the backward pass reuses the forward's buffer
INPLACE_MIN_NUMEL = 1 << 16


class _ShiftedCrossEntropy(torch.autograd.Function):
    """``-log_softmax(z + shift * scale)[y] * w_y`` per pixel.

    Inputs: ``z`` (N, C, ...) logits; ``shift`` broadcastable to ``z``
    (with ``scale``: a fresh tensor shaped like ``z`` that is overwritten
    with ``z + shift * scale``); ``scale`` broadcastable to ``z`` or None;
    ``index`` (N, 1, ...) the labels with ignored pixels mapped to class 0;
    ``weight`` (N, ...) the per-pixel weight, 0 at ignored pixels.
    """

    @staticmethod
    def forward(ctx, z: Tensor, shift: Tensor, scale: Optional[Tensor],
                index: Tensor, weight: Tensor) -> Tensor:
        with torch.autocast(z.device.type, enabled=False):
            if shift is None:
                logp = torch.log_softmax(z, 1)
            else:
                logp = (torch.add(z, shift) if scale is None else
                        torch.addcmul(z, shift, scale, out=shift))
                torch.log_softmax(logp, 1, out=logp)
            loss = logp.gather(1, index).squeeze(1).neg_().mul_(weight)
        ctx.save_for_backward(logp, index, weight)
        ctx.in_place = logp.numel() >= INPLACE_MIN_NUMEL
        ctx.consumed = False
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        if ctx.consumed:
            raise RuntimeError(
                'the fused cross-entropy (shifted_cross_entropy) '
                'turns its saved log-probabilities into the gradient in '
                'place, so its graph can be back-propagated once only '
                '(retain_graph=True and a second backward are not '
                'supported for inputs of more than '
                f'{INPLACE_MIN_NUMEL} logits)')
        logp, index, weight = ctx.saved_tensors
        g = (grad * weight).unsqueeze(1)
        if ctx.in_place:
            ctx.consumed = True
            grad_z = logp.exp_()
        else:
            grad_z = logp.exp()
        grad_z.mul_(g).scatter_add_(1, index, -g)
        return grad_z, None, None, None, None


def plain_cross_entropy(cls_score: Tensor, target,
                        class_weight: Optional[Tensor] = None) -> Tensor:
    """mmseg's per-pixel CE bit for bit (a loss whose shift is zero)."""
    return F.cross_entropy(cls_score, target.label, weight=class_weight,
                           reduction='none', ignore_index=target.ignore_index)


def shifted_cross_entropy(cls_score: Tensor,
                          target,
                          shift: Optional[Tensor] = None,
                          scale: Optional[Tensor] = None,
                          class_weight: Optional[Tensor] = None) -> Tensor:
    """Per-pixel ``F.cross_entropy(cls_score + shift [* scale], label,
    class_weight, reduction='none', ignore_index)`` (0 at ignored pixels),
    fused (see the module docstring).

    Args:
        cls_score: logits (N, C, ...).
        target: the :class:`~.base.PixelTargets` of the call.
        shift: added to the logits (None: none); broadcastable to them (a
            per-class constant), or with ``scale`` a fresh tensor of their
            shape that this call overwrites (BLV's noise buffer).
        scale: multiplies ``shift`` before the addition (None: 1).
        class_weight: (C,) per-class weights (None: unweighted).

    Returns:
        (N, ...) per-pixel losses.
    """
    if scale is not None and (shift is None
                              or shift.shape != cls_score.shape):
        got = None if shift is None else tuple(shift.shape)
        raise ValueError('with scale, shift must be a buffer of the logits\' '
                         f'shape {tuple(cls_score.shape)}, got {got}')
    valid = target.valid
    index = torch.where(valid, target.label, 0).unsqueeze(1)
    if class_weight is None:
        weight = valid.to(cls_score.dtype)
    else:
        weight = target.gather(class_weight.to(cls_score.dtype), 0.0)
    return _ShiftedCrossEntropy.apply(cls_score, shift, scale, index, weight)
