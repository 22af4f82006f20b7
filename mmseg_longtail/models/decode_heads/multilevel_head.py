"""Base class of the U-Net-family heads: a decoder over backbone levels."""
from typing import List, Optional, Sequence

import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmseg.models.backbones.unet import BasicConvBlock
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from torch import Tensor

from mmseg_longtail.models.losses.base import check_head_losses


def upsample_to(x: Tensor, ref: Tensor, align_corners: bool) -> Tensor:
    """Bilinear resize of ``x`` to the spatial size of ``ref`` (any size,
    so inputs need not be divisible by the total stride)."""
    if x.shape[2:] == ref.shape[2:]:
        return x
    return F.interpolate(x, size=ref.shape[2:], mode='bilinear',
                         align_corners=align_corners)


def check_norm_channels(owner: str, norm_cfg: Optional[dict], channels: int,
                        field: str, fix: str) -> None:
    """Fail at build time, naming the config field, when ``norm_cfg``
    cannot normalise a layer of ``channels`` channels.

    A throwaway norm layer is built so that each norm type applies its own
    rule (GN: ``num_groups`` must divide the channels); without this the
    error comes from deep inside ``ConvModule`` and names no field.

    Args:
        owner (str): the class name, first in the message.
        norm_cfg (dict | None): the norm config (None: nothing to check).
        channels (int): channels of the normalised layer.
        field (str): where they come from, e.g. ``'attention_channels[0]'``.
        fix (str): the config field(s) to change; ``' or
            norm_cfg.num_groups'`` is appended for GN.
    """
    if norm_cfg is None:
        return
    try:
        build_norm_layer(norm_cfg, channels)
    except (AssertionError, ValueError, TypeError, KeyError) as err:
        if norm_cfg.get('type') == 'GN':
            fix += ' or norm_cfg.num_groups'
        reason = str(err) or type(err).__name__
        raise ValueError(
            f'{owner}: norm_cfg={dict(norm_cfg)} cannot normalise the '
            f'{channels} channels of {field} ({reason}); change {fix}'
        ) from err


class MultiLevelDecodeHead(BaseDecodeHead):
    """A decode head that reads several backbone levels, fine to coarse.

    Shared by :class:`UNetPlusPlusHead` and :class:`AttentionUNetHead`:
    argument checks (at build time, naming the field), per-level decoder
    widths, level gathering and the conv block. ``input_transform`` is
    fixed to ``'multiple_select'``. A ``norm_cfg`` that cannot normalise a
    decoder width (GN whose ``num_groups`` does not divide it) fails at
    build time naming ``decoder_channels`` and ``norm_cfg.num_groups``.

    Args:
        in_channels (Sequence[int]): channels of the selected levels.
        channels (int): width of the finest decoder level (input of
            ``conv_seg``).
        in_index (Sequence[int]): backbone outputs to use, fine to coarse.
        decoder_channels (Sequence[int], optional): widths of the decoder
            levels ``0..L-2``; default ``channels * 2**i`` (a U-Net whose
            width doubles per level). Level 0 must equal ``channels``.
        num_convs (int): 3x3 conv-norm-act layers per block. Default: 2.
        with_cp (bool): gradient checkpointing in the blocks.
        **kwargs: :class:`BaseDecodeHead` arguments.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 channels: int,
                 in_index: Sequence[int],
                 decoder_channels: Optional[Sequence[int]] = None,
                 num_convs: int = 2,
                 with_cp: bool = False,
                 **kwargs):
        name = type(self).__name__
        if 'input_transform' in kwargs:
            raise ValueError(
                f'{name}: input_transform is fixed to "multiple_select" (the '
                'head consumes the whole feature list); remove it')
        for field, value in (('in_channels', in_channels),
                             ('in_index', in_index)):
            if not isinstance(value, (list, tuple)):
                raise TypeError(f'{name}: {field} must be a list (one entry '
                                f'per backbone level), got {value!r}')
        if len(in_channels) != len(in_index):
            raise ValueError(f'{name}: in_channels has {len(in_channels)} '
                             f'entries but in_index has {len(in_index)}')
        if len(in_channels) < 2:
            raise ValueError(f'{name}: needs at least 2 levels, got '
                             f'in_channels={list(in_channels)}')
        if num_convs < 1:
            raise ValueError(f'{name}: num_convs must be >= 1, '
                             f'got {num_convs}')
        super().__init__(
            in_channels=list(in_channels),
            channels=channels,
            in_index=list(in_index),
            input_transform='multiple_select',
            **kwargs)
        self.num_levels = len(self.in_channels)
        self.num_convs = num_convs
        self.with_cp = with_cp
        self.decoder_channels = self._decoder_widths(decoder_channels)
        check_head_losses(self)
        for i, width in enumerate(self.decoder_channels):
            # level 0 is tied to channels (the input of conv_seg); the
            # default widths channels * 2**i fail there first, if at all
            fix = ('channels (= decoder_channels[0])'
                   if i == 0 else 'decoder_channels')
            check_norm_channels(name, self.norm_cfg, width,
                                f'decoder_channels[{i}]', fix)

    def _decoder_widths(self, decoder_channels) -> List[int]:
        name, levels = type(self).__name__, self.num_levels
        if decoder_channels is None:
            return [self.channels * 2**i for i in range(levels - 1)]
        widths = [int(w) for w in decoder_channels]
        if len(widths) != levels - 1 or min(widths) < 1:
            raise ValueError(
                f'{name}: decoder_channels needs {levels - 1} positive '
                'entries (one per level except the coarsest), got '
                f'{list(decoder_channels)}')
        if widths[0] != self.channels:
            raise ValueError(
                f'{name}: decoder_channels[0]={widths[0]} must equal '
                f'channels={self.channels} (it is the input of conv_seg)')
        return widths

    def _block(self, in_channels: int, out_channels: int) -> BasicConvBlock:
        """``num_convs`` 3x3 conv-norm-act layers (mmseg's U-Net block)."""
        return BasicConvBlock(
            in_channels,
            out_channels,
            num_convs=self.num_convs,
            with_cp=self.with_cp,
            conv_cfg=self.conv_cfg,
            norm_cfg=self.norm_cfg,
            act_cfg=self.act_cfg)

    def _levels(self, inputs: Sequence[Tensor]) -> List[Tensor]:
        """Select ``in_index`` and check the fine-to-coarse order (shapes
        are Python ints: no host sync)."""
        levels = self._transform_inputs(inputs)
        for i in range(1, len(levels)):
            fine, coarse = levels[i - 1].shape[2:], levels[i].shape[2:]
            if coarse[0] > fine[0] or coarse[1] > fine[1]:
                raise ValueError(
                    f'{type(self).__name__}: level {i} ({tuple(coarse)}) is '
                    f'larger than level {i - 1} ({tuple(fine)}); in_index '
                    'must list backbone outputs from fine to coarse')
        return levels

    def _upsample(self, x: Tensor, ref: Tensor) -> Tensor:
        return upsample_to(x, ref, self.align_corners)
