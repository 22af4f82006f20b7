"""Attention U-Net decode head (additive attention gates on the skips)."""
from typing import Optional, Sequence

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmseg.registry import MODELS
from torch import Tensor

from .multilevel_head import MultiLevelDecodeHead, upsample_to


class AttentionGate(nn.Module):
    """Additive attention gate of Attention U-Net (Oktay et al., Eq. 1-2).

    .. math::

        \\alpha = \\sigma\\big(\\psi^T \\mathrm{ReLU}(W_x^T x +
                  \\mathrm{Up}(W_g^T g)) + b_\\psi\\big), \\qquad
        \\hat{x} = \\alpha \\cdot x

    ``x`` is the skip feature, ``g`` the coarser decoder feature (gating
    signal). ``W_g`` is applied at the coarse resolution and then resized:
    a 1x1 conv commutes with bilinear resizing, so this is the paper's gate
    at a fraction of the cost. ``W_x`` and ``W_g`` are 1x1 conv + norm;
    ``psi`` is a 1x1 conv with bias (no norm: one channel).

    Args:
        in_channels (int): channels of ``x``.
        gating_channels (int): channels of ``g``.
        inter_channels (int): channels of the joint space (F_int).
        conv_cfg, norm_cfg (dict | None): for ``W_x`` and ``W_g``.
        align_corners (bool): of the resize of ``W_g g``.
    """

    def __init__(self,
                 in_channels: int,
                 gating_channels: int,
                 inter_channels: int,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None,
                 align_corners: bool = False):
        super().__init__()
        self.align_corners = align_corners
        self.theta = ConvModule(in_channels, inter_channels, 1,
                                conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                                act_cfg=None)
        self.phi = ConvModule(gating_channels, inter_channels, 1,
                              conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                              act_cfg=None)
        self.psi = nn.Conv2d(inter_channels, 1, kernel_size=1)
        self.relu = nn.ReLU(inplace=True)

    def coefficients(self, x: Tensor, g: Tensor) -> Tensor:
        """Attention coefficients ``alpha`` in (0, 1), shape (N, 1, H, W)."""
        gate = upsample_to(self.phi(g), x, self.align_corners)
        return torch.sigmoid(self.psi(self.relu(self.theta(x) + gate)))

    def forward(self, x: Tensor, g: Tensor) -> Tensor:
        return x * self.coefficients(x, g)


@MODELS.register_module()
class AttentionUNetHead(MultiLevelDecodeHead):
    """Attention U-Net decoder on the feature list of any backbone.

    Implements `Attention U-Net: Learning Where to Look for the Pancreas
    <https://arxiv.org/abs/1804.03999>`_ (Oktay et al., MIDL 2018). Starting
    from the coarsest level ``d[L-1] = x[L-1]``, each decoder level is

    .. math::

        d_i = H\\big([\\alpha_i(x_i, d_{i+1}) \\cdot x_i,
                     \\mathrm{Up}(d_{i+1})]\\big),

    with ``alpha_i`` the additive attention gate driven by the coarser
    decoder feature ``d[i+1]`` (:class:`AttentionGate`), ``H`` a block of
    ``num_convs`` 3x3 conv-norm-act layers and ``Up`` a bilinear resize to
    the size of level ``i`` (any input size works). ``conv_seg`` classifies
    ``d[0]``; ``_forward_feature`` returns it.

    Args:
        in_channels (Sequence[int]): channels of the selected levels, fine
            to coarse.
        channels (int): width of ``d[0]`` (input of ``conv_seg``).
        in_index (Sequence[int]): backbone outputs to use, fine to coarse.
        decoder_channels (Sequence[int], optional): widths of ``d[0..L-2]``;
            default ``channels * 2**i``.
        attention_channels (Sequence[int], optional): F_int of each gate
            (levels ``0..L-2``); default ``max(1, in_channels[i] // 2)``.
        num_convs (int): conv layers per decoder block. Default: 2.
        with_cp (bool): gradient checkpointing in the decoder blocks.
        **kwargs: :class:`BaseDecodeHead` arguments (``num_classes``,
            ``norm_cfg``, ``align_corners``, ``loss_decode``, ...).
            ``input_transform`` is fixed to ``'multiple_select'``
            (see :class:`MultiLevelDecodeHead`).
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 channels: int,
                 in_index: Sequence[int],
                 attention_channels: Optional[Sequence[int]] = None,
                 **kwargs):
        super().__init__(in_channels, channels, in_index, **kwargs)
        levels = self.num_levels
        if attention_channels is None:
            inter = [max(1, c // 2) for c in self.in_channels[:-1]]
        else:
            inter = [int(c) for c in attention_channels]
            if len(inter) != levels - 1 or min(inter) < 1:
                raise ValueError(
                    f'{type(self).__name__}: attention_channels needs '
                    f'{levels - 1} positive entries, got '
                    f'{list(attention_channels)}')
        # Level i is gated by, and upsamples, the level below it.
        below = self.decoder_channels[1:] + [self.in_channels[-1]]
        self.gates = nn.ModuleList(
            AttentionGate(
                self.in_channels[i],
                below[i],
                inter[i],
                conv_cfg=self.conv_cfg,
                norm_cfg=self.norm_cfg,
                align_corners=self.align_corners) for i in range(levels - 1))
        self.blocks = nn.ModuleList(
            self._block(self.in_channels[i] + below[i],
                        self.decoder_channels[i]) for i in range(levels - 1))

    def _forward_feature(self, inputs: Sequence[Tensor]) -> Tensor:
        """Pre-classifier feature ``d[0]``, shape (N, channels, H0, W0):
        the decoder runs from ``d[L-1]`` (the coarsest backbone level) up.
        """
        xs = self._levels(inputs)
        d = xs[-1]
        for i in reversed(range(len(xs) - 1)):
            skip = self.gates[i](xs[i], d)
            d = self.blocks[i](torch.cat([skip, self._upsample(d, xs[i])],
                                         dim=1))
        return d

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        return self.cls_seg(self._forward_feature(inputs))
