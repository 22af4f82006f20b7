"""Attention U-Net decode head (additive attention gates on the skips)."""
from typing import Optional, Sequence

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, build_norm_layer
from mmseg.registry import MODELS
from torch import Tensor

from .multilevel_head import (MultiLevelDecodeHead, check_norm_channels,
                              upsample_to)

GATE_MODES = ('skip', 'gating')
GATE_DEFAULTS = dict(
    mode='skip',
    sub_sample_factor=2,
    with_output_transform=False,
    with_psi_norm=False)


class AttentionGate(nn.Module):
    """Additive attention gate of Attention U-Net (Oktay et al., Eq. 1-2).

    .. math::

        \\alpha = \\sigma\\big(\\psi^T \\mathrm{ReLU}(W_x^T x + W_g^T g + b_g)
                  + b_\\psi\\big), \\qquad
        \\hat{x} = \\alpha \\cdot x \\quad
        (\\text{or } W(\\alpha \\cdot x) \\text{ with the output transform})

    ``x`` is the skip feature, ``g`` the gating signal (a coarser decoder
    feature). The two modes differ in the grid on which ``alpha`` is
    computed:

    * ``mode='skip'`` (default): on the skip's grid. ``W_x`` (``theta``) and
      ``W_g`` (``phi``) are 1x1 conv + norm; ``W_g`` runs on ``g`` at its
      own (coarse) resolution and its output is resized bilinearly to
      ``x``'s size, which is cheaper than resizing ``g`` first. A 1x1 conv
      commutes with the resize (the bilinear weights sum to one, so also
      the bias), and so does a norm that is a fixed per-channel affine map
      (BN in eval mode); a norm whose statistics come from the map it
      normalises does not: BN in training mode, GN, IN normalise the coarse
      map here but would normalise the resized one if ``g`` were resized
      first. When ``g`` already has ``x``'s size (``up_conv=True`` in
      :class:`AttentionUNetHead`) there is no resize, and with
      ``with_psi_norm=True`` this is the gate of the widely used
      ``AttU_Net`` (LeeJunHyun/Image_Segmentation: ``W_g``, ``W_x`` conv +
      BN, ``psi`` conv + BN + sigmoid).
    * ``mode='gating'``: on the gating signal's grid, then resampled, as in
      Oktay et al.'s code (``_GridAttentionBlockND``, mode
      ``'concatenation'``; the paper's Fig. 2 "resampler"): ``theta`` is a
      ``k x k`` conv with stride ``k`` (``k = sub_sample_factor``) and no
      bias, ``phi`` a 1x1 conv with bias, neither normalised; ``phi(g)`` is
      resized to ``theta(x)``'s grid, ``alpha`` is computed there and
      resized bilinearly to ``x``'s size.

    ``psi`` is a 1x1 conv with bias or, with ``with_psi_norm`` and a
    ``norm_cfg``, a 1x1 conv followed by a norm over its one channel
    (``psi_norm``; the bias, cancelled by the norm, is dropped). The output
    transform ``W`` of Oktay et al.'s code (1x1 conv + BN on
    ``alpha * x``) is ``out_transform``, a 1x1 conv + norm, with
    ``with_output_transform``. ``norm_cfg=None`` means no norm anywhere.

    Args:
        in_channels (int): channels of ``x``.
        gating_channels (int): channels of ``g``.
        inter_channels (int): channels of the joint space (F_int).
        mode (str): ``'skip'`` or ``'gating'`` (see above).
        sub_sample_factor (int): ``k`` of ``mode='gating'``: the stride
            from ``x``'s grid to the grid of ``alpha`` (2: the gating signal
            of the next coarser level). Default: 2.
        with_output_transform (bool): add ``W`` after the gating.
        with_psi_norm (bool): normalise ``psi``'s output.
        conv_cfg, norm_cfg (dict | None): for the convs and norms.
        align_corners (bool): of the bilinear resizes.
    """

    def __init__(self,
                 in_channels: int,
                 gating_channels: int,
                 inter_channels: int,
                 mode: str = 'skip',
                 sub_sample_factor: int = 2,
                 with_output_transform: bool = False,
                 with_psi_norm: bool = False,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None,
                 align_corners: bool = False):
        super().__init__()
        if mode not in GATE_MODES:
            raise ValueError(f'{type(self).__name__}: mode must be one of '
                             f'{GATE_MODES}, got {mode!r}')
        self.mode = mode
        self.align_corners = align_corners
        if mode == 'skip':
            self.theta = ConvModule(in_channels, inter_channels, 1,
                                    conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                                    act_cfg=None)
            self.phi = ConvModule(gating_channels, inter_channels, 1,
                                  conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                                  act_cfg=None)
        else:
            k = sub_sample_factor
            # no bias on theta: phi's bias is the b_g of the sum
            self.theta = ConvModule(in_channels, inter_channels, k,
                                    stride=k, bias=False, conv_cfg=conv_cfg,
                                    norm_cfg=None, act_cfg=None)
            self.phi = ConvModule(gating_channels, inter_channels, 1,
                                  bias=True, conv_cfg=conv_cfg,
                                  norm_cfg=None, act_cfg=None)
        psi_norm = with_psi_norm and norm_cfg is not None
        # a bias before a norm is cancelled by it (ConvModule's 'auto')
        self.psi = nn.Conv2d(inter_channels, 1, kernel_size=1,
                             bias=not psi_norm)
        self.psi_norm = build_norm_layer(norm_cfg, 1)[1] if psi_norm else None
        self.relu = nn.ReLU(inplace=True)
        self.out_transform = None
        if with_output_transform:
            self.out_transform = ConvModule(in_channels, in_channels, 1,
                                            conv_cfg=conv_cfg,
                                            norm_cfg=norm_cfg, act_cfg=None)

    def coefficients(self, x: Tensor, g: Tensor) -> Tensor:
        """Attention coefficients ``alpha`` in (0, 1), shape (N, 1, H, W)
        (``x``'s size in both modes)."""
        theta_x = self.theta(x)
        phi_g = upsample_to(self.phi(g), theta_x, self.align_corners)
        q = self.psi(self.relu(theta_x + phi_g))
        if self.psi_norm is not None:
            q = self.psi_norm(q)
        # 'gating': theta_x is on the coarse grid, alpha is resampled
        return upsample_to(torch.sigmoid(q), x, self.align_corners)

    def forward(self, x: Tensor, g: Tensor) -> Tensor:
        out = x * self.coefficients(x, g)
        if self.out_transform is not None:
            out = self.out_transform(out)
        return out


@MODELS.register_module()
class AttentionUNetHead(MultiLevelDecodeHead):
    """Attention U-Net decoder on the feature list of any backbone.

    Implements `Attention U-Net: Learning Where to Look for the Pancreas
    <https://arxiv.org/abs/1804.03999>`_ (Oktay et al., MIDL 2018). Starting
    from the coarsest level ``d[L-1] = x[L-1]``, each decoder level is

    .. math::

        d_i = H\\big([\\mathrm{AG}_i(x_i, g_i), u_i]\\big), \\qquad
        u_i = \\mathrm{Up}(d_{i+1}), \\quad g_i = d_{i+1}

    with ``AG_i`` the additive attention gate (:class:`AttentionGate`,
    configured by ``gate_cfg``), ``H`` a block of ``num_convs`` 3x3
    conv-norm-act layers and ``Up`` a bilinear resize to the size of level
    ``i`` (any input size works). This is the decoder of Oktay et al.'s
    code (upsample, concatenate, conv block). With ``up_conv=True``,
    ``u_i = C(\\mathrm{Up}(d_{i+1}))`` with ``C`` a 3x3 conv-norm-act to
    ``decoder_channels[i]``, and the gate is driven by ``g_i = u_i`` (at
    the skip's resolution): the layout of the widely used ``AttU_Net``
    (LeeJunHyun/Image_Segmentation, whose ``Upsample`` is nearest x2; here
    bilinear to the skip's size). ``conv_seg`` classifies ``d[0]``;
    ``_forward_feature`` returns it.

    Variants (``gate_cfg`` / ``up_conv``):

    * default, ``dict(mode='skip')`` / False: gate on the skip's grid with
      ``W_g`` before the resize, no ``W``, no up-conv;
    * Oktay et al.'s code: ``dict(mode='gating',
      with_output_transform=True)`` / False (its networks also pass the
      centre feature through a 1x1 conv-BN-ReLU before the first gate, add
      a 1x1 conv-BN-ReLU after each gate and leave the finest skip
      ungated; none of this is done here);
    * ``AttU_Net``: ``dict(mode='skip', with_psi_norm=True)`` / True.

    Args:
        in_channels (Sequence[int]): channels of the selected levels, fine
            to coarse.
        channels (int): width of ``d[0]`` (input of ``conv_seg``).
        in_index (Sequence[int]): backbone outputs to use, fine to coarse.
        decoder_channels (Sequence[int], optional): widths of ``d[0..L-2]``;
            default ``channels * 2**i``.
        attention_channels (Sequence[int], optional): F_int of each gate
            (levels ``0..L-2``); default ``max(1, in_channels[i] // 2)``.
        gate_cfg (dict, optional): :class:`AttentionGate` options ``mode``
            (``'skip'``), ``sub_sample_factor`` (2),
            ``with_output_transform`` (False), ``with_psi_norm`` (False);
            missing keys take these defaults.
        up_conv (bool): 3x3 conv-norm-act after each upsampling, whose
            output also drives the gate. Needs ``gate_cfg.mode='skip'``.
            Default: False.
        num_convs (int): conv layers per decoder block. Default: 2.
        with_cp (bool): gradient checkpointing in the decoder blocks.
        **kwargs: :class:`BaseDecodeHead` arguments (``num_classes``,
            ``norm_cfg``, ``align_corners``, ``loss_decode``, ...).
            ``input_transform`` is fixed to ``'multiple_select'``
            (see :class:`MultiLevelDecodeHead`).

    A ``norm_cfg`` that cannot normalise a gate's or a block's channels
    (GN whose ``num_groups`` does not divide them) fails at build time
    with a message naming the field to change.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 channels: int,
                 in_index: Sequence[int],
                 attention_channels: Optional[Sequence[int]] = None,
                 gate_cfg: Optional[dict] = None,
                 up_conv: bool = False,
                 **kwargs):
        super().__init__(in_channels, channels, in_index, **kwargs)
        name, levels = type(self).__name__, self.num_levels
        gate = self._gate_options(gate_cfg, up_conv)
        self.gate_cfg = gate
        if attention_channels is None:
            inter = [max(1, c // 2) for c in self.in_channels[:-1]]
            default = ' (default in_channels[i] // 2: set it explicitly)'
        else:
            inter = [int(c) for c in attention_channels]
            if len(inter) != levels - 1 or min(inter) < 1:
                raise ValueError(
                    f'{name}: attention_channels needs {levels - 1} positive '
                    f'entries, got {list(attention_channels)}')
            default = ''
        self._check_gate_norms(inter, gate, default)
        # Level i upsamples the level below it, d[i+1]; with up_conv the
        # upsampled feature is projected to decoder_channels[i].
        below = self.decoder_channels[1:] + [self.in_channels[-1]]
        up = self.decoder_channels if up_conv else below
        self.up_convs = None
        if up_conv:
            self.up_convs = nn.ModuleList(
                ConvModule(
                    below[i],
                    self.decoder_channels[i],
                    3,
                    padding=1,
                    conv_cfg=self.conv_cfg,
                    norm_cfg=self.norm_cfg,
                    act_cfg=self.act_cfg) for i in range(levels - 1))
        # the gate is driven by d[i+1] or, with up_conv, by u_i
        self.gates = nn.ModuleList(
            AttentionGate(
                self.in_channels[i],
                up[i],
                inter[i],
                conv_cfg=self.conv_cfg,
                norm_cfg=self.norm_cfg,
                align_corners=self.align_corners,
                **gate) for i in range(levels - 1))
        self.blocks = nn.ModuleList(
            self._block(self.in_channels[i] + up[i], self.decoder_channels[i])
            for i in range(levels - 1))

    def _gate_options(self, gate_cfg: Optional[dict], up_conv: bool) -> dict:
        """``gate_cfg`` with its defaults, checked at build time."""
        name = type(self).__name__
        gate = dict(GATE_DEFAULTS)
        if gate_cfg is not None:
            if not isinstance(gate_cfg, dict):
                raise TypeError(f'{name}: gate_cfg must be a dict, got '
                                f'{gate_cfg!r}')
            unknown = sorted(set(gate_cfg) - set(GATE_DEFAULTS))
            if unknown:
                raise ValueError(
                    f'{name}: gate_cfg has unknown keys {unknown}; allowed: '
                    f'{sorted(GATE_DEFAULTS)}')
            gate.update(gate_cfg)
        if gate['mode'] not in GATE_MODES:
            raise ValueError(f'{name}: gate_cfg.mode must be one of '
                             f'{GATE_MODES}, got {gate["mode"]!r}')
        k = gate['sub_sample_factor']
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f'{name}: gate_cfg.sub_sample_factor must be a '
                             f'positive int, got {k!r}')
        if up_conv and gate['mode'] == 'gating':
            # with up_conv the gating signal already has the skip's size:
            # there is no coarser grid to compute the gate on
            raise ValueError(
                f"{name}: up_conv=True drives the gates with a signal at the "
                "skip's resolution; use gate_cfg.mode='skip' with it (or "
                'up_conv=False for the gating-grid gate)')
        return gate

    def _check_gate_norms(self, inter: Sequence[int], gate: dict,
                          default: str) -> None:
        """Every normalised layer of the gates can take ``norm_cfg``."""
        name = type(self).__name__
        for i, c in enumerate(inter):
            if gate['mode'] == 'skip':  # 'gating': theta, phi have no norm
                check_norm_channels(name, self.norm_cfg, c,
                                    f'attention_channels[{i}]',
                                    f'attention_channels{default}')
            if gate['with_output_transform']:
                check_norm_channels(
                    name, self.norm_cfg, self.in_channels[i],
                    f'in_channels[{i}] (the output transform W)',
                    'gate_cfg.with_output_transform=False')
        if gate['with_psi_norm']:
            check_norm_channels(name, self.norm_cfg, 1,
                                "the gates' psi (one channel)",
                                'gate_cfg.with_psi_norm=False')

    def _forward_feature(self, inputs: Sequence[Tensor]) -> Tensor:
        """Pre-classifier feature ``d[0]``, shape (N, channels, H0, W0):
        the decoder runs from ``d[L-1]`` (the coarsest backbone level) up.
        """
        xs = self._levels(inputs)
        d = xs[-1]
        for i in reversed(range(len(xs) - 1)):
            u = self._upsample(d, xs[i])
            if self.up_convs is None:
                skip = self.gates[i](xs[i], d)
            else:
                u = self.up_convs[i](u)
                skip = self.gates[i](xs[i], u)
            d = self.blocks[i](torch.cat([skip, u], dim=1))
        return d

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        return self.cls_seg(self._forward_feature(inputs))
