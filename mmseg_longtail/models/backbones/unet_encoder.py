"""The encoder half of mmseg's U-Net, as a backbone for U-Net-style heads."""
from typing import Optional, Sequence, Tuple

from mmseg.models.backbones import UNet
from mmseg.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class UNetEncoder(UNet):
    """Plain U-Net encoder: the contracting path of `U-Net
    <https://arxiv.org/abs/1505.04597>`_ (Ronneberger et al., MICCAI 2015).

    Stage ``i`` is ``MaxPool(2)`` (from stage 1 on) followed by
    ``enc_num_convs[i]`` 3x3 conv-norm-act layers with ``base_channels *
    2**i`` channels, so the default five stages have strides 1, 2, 4, 8, 16
    and channels ``c, 2c, 4c, 8c, 16c``: the levels a U-Net decoder expects
    (mmseg's ResNets start at stride 4). Returns the stage outputs listed in
    ``out_indices``, fine to coarse, for :class:`UNetPlusPlusHead` and
    :class:`AttentionUNetHead`.

    It is mmseg's :class:`~mmseg.models.backbones.UNet` without its decoder
    (the head is the decoder): same arguments, checks and init, and the
    same ``encoder.*`` parameter names, so the encoder of an mmseg UNet
    checkpoint loads into it. Unlike ``UNet``, any input size is accepted:
    max-pooling floors odd sizes and the heads resize to the skip's size.

    Args:
        in_channels, base_channels, num_stages, strides, enc_num_convs,
        downsamples, enc_dilations, with_cp, conv_cfg, norm_cfg, act_cfg,
        norm_eval, pretrained, init_cfg: as in mmseg's ``UNet``.
        out_indices (Sequence[int]): stages to return. Default: all.
    """

    def __init__(self,
                 in_channels: int = 3,
                 base_channels: int = 32,
                 num_stages: int = 5,
                 strides: Sequence[int] = (1, 1, 1, 1, 1),
                 enc_num_convs: Sequence[int] = (2, 2, 2, 2, 2),
                 downsamples: Sequence[bool] = (True, True, True, True),
                 enc_dilations: Sequence[int] = (1, 1, 1, 1, 1),
                 out_indices: Optional[Sequence[int]] = None,
                 with_cp: bool = False,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 act_cfg: Optional[dict] = dict(type='ReLU'),
                 norm_eval: bool = False,
                 pretrained: Optional[str] = None,
                 init_cfg=None):
        if out_indices is None:
            out_indices = tuple(range(num_stages))
        bad = [i for i in out_indices if not 0 <= i < num_stages]
        if bad or not out_indices:
            raise ValueError(f'UNetEncoder: out_indices must be non-empty '
                             f'stage ids in 0..{num_stages - 1}, '
                             f'got {tuple(out_indices)}')
        # The decoder arguments only have to pass UNet's length checks: the
        # decoder they build is dropped right after.
        super().__init__(
            in_channels=in_channels,
            base_channels=base_channels,
            num_stages=num_stages,
            strides=strides,
            enc_num_convs=enc_num_convs,
            dec_num_convs=(1, ) * (num_stages - 1),
            downsamples=downsamples,
            enc_dilations=enc_dilations,
            dec_dilations=(1, ) * (num_stages - 1),
            with_cp=with_cp,
            conv_cfg=conv_cfg,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg,
            upsample_cfg=None,
            norm_eval=norm_eval,
            pretrained=pretrained,
            init_cfg=init_cfg)
        del self.decoder
        self.out_indices = tuple(out_indices)
        self.out_channels = tuple(base_channels * 2**i for i in out_indices)

    def train(self, mode: bool = True) -> 'UNetEncoder':
        # UNet.train keeps norm_eval but returns None; nn.Module returns
        # self (so ``enc.eval()`` chains)
        super().train(mode)
        return self

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        outs = []
        for stage in self.encoder:
            x = stage(x)
            outs.append(x)
        return tuple(outs[i] for i in self.out_indices)
