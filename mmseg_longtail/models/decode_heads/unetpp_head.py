"""UNet++ decode head (nested dense skip pathways)."""
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, SampleList
from torch import Tensor

from .multilevel_head import MultiLevelDecodeHead

DS_INFERENCE = ('last', 'mean')


def merge_probabilities(logits: Sequence[Tensor]) -> Tensor:
    """Logits whose probabilities are the mean of the branches' ones.

    Softmax case: ``log(mean_j softmax(z_j))`` via ``logsumexp`` (stable,
    never ``-inf`` from underflow of one branch). One output channel
    (sigmoid heads): the logit of ``mean_j sigmoid(z_j)``.
    """
    z = torch.stack(list(logits), dim=0)
    log_j = math.log(z.shape[0])
    if z.shape[2] == 1:
        log_p = torch.logsumexp(F.logsigmoid(z), dim=0) - log_j
        log_q = torch.logsumexp(F.logsigmoid(-z), dim=0) - log_j
        return log_p - log_q
    return torch.logsumexp(F.log_softmax(z, dim=2), dim=0) - log_j


@MODELS.register_module()
class UNetPlusPlusHead(MultiLevelDecodeHead):
    """UNet++ decoder on the feature list of any backbone.

    Implements `UNet++: A Nested U-Net Architecture for Medical Image
    Segmentation <https://arxiv.org/abs/1807.10165>`_ (Zhou et al., DLMIA
    2018). With backbone levels ``X[i,0]`` (``i = 0`` finest), every node of
    the nested grid is

    .. math::

        X_{i,j} = H\\big([X_{i,0}, \\dots, X_{i,j-1},
                          \\mathrm{Up}(X_{i+1,j-1})]\\big), \\quad j \\ge 1,

    where ``H`` is a block of ``num_convs`` 3x3 conv-norm-act layers and
    ``Up`` a bilinear resize to the size of level ``i`` (so any input size
    works, divisible by the total stride or not). ``conv_seg`` classifies
    the last top-row node ``X[0,L-1]``; ``_forward_feature`` returns it.

    Deep supervision (paper Sec. 2): the other top-row nodes
    ``X[0,1..L-2]`` get their own 1x1 classifiers. In training each adds
    the decode losses under ``<loss_name>_ds<j>`` (times
    ``ds_loss_weight``). At inference ``ds_inference='last'`` classifies
    ``X[0,L-1]`` only (the extra classifiers are then unused, but every node
    of the grid is still computed: no speed gain); ``'mean'`` averages the
    probabilities of all top-row outputs (the paper's accurate mode) and
    returns them as logits (log-probabilities).

    Pruning (`UNet++: Redesigning Skip Connections to Exploit Multiscale
    Features in Image Segmentation <https://arxiv.org/abs/1912.05074>`_,
    Zhou et al., TMI 2019, model pruning, Fig. 2; the DLMIA paper's fast
    mode): a network trained with deep supervision is cut at inference to
    UNet++ ``L^d``, which computes only the nodes ``X[i,j]`` with

    .. math::

        j \\ge 1, \\quad i + j \\le d

    (``d(d+1)/2`` of the ``L(L-1)/2`` decoder nodes) and classifies
    ``X[0,d]`` with its own classifier (``ds_convs[d-1]``, or ``conv_seg``
    for ``d = L-1``). ``prune_level=d`` turns this on in eval mode;
    training (``loss`` and train-mode ``forward``) always computes the
    whole grid. The backbone is not the head's: it still computes every
    level, of which ``L^d`` reads levels ``0..d`` only.

    Args:
        in_channels (Sequence[int]): channels of the selected levels, fine
            to coarse.
        channels (int): width of the top row (input of ``conv_seg``).
        in_index (Sequence[int]): backbone outputs to use, fine to coarse.
        decoder_channels (Sequence[int], optional): width of the decoder
            nodes of each level ``0..L-2``; default ``channels * 2**i``.
        num_convs (int): conv layers per node. Default: 2.
        deep_supervision (bool): add classifiers on the top row.
            Needs at least 3 levels. Default: False.
        ds_loss_weight (float | Sequence[float]): weight of each extra
            output's losses (one value, or one per ``X[0,1..L-2]``).
        ds_inference (str): ``'last'`` or ``'mean'`` (see above). With
            ``prune_level=d``, ``'last'`` classifies ``X[0,d]`` and
            ``'mean'`` averages the outputs of ``X[0,1..d]`` (the accurate
            mode of ``L^d``).
        prune_level (int, optional): ``d`` in ``1..L-1``: evaluate UNet++
            ``L^d`` (see above). ``d < L-1`` needs ``deep_supervision``
            (``X[0,d]`` is classified by its deep-supervision classifier).
            Default: None (the whole network).
        with_cp (bool): gradient checkpointing in the nodes.
        **kwargs: :class:`BaseDecodeHead` arguments (``num_classes``,
            ``norm_cfg``, ``align_corners``, ``loss_decode``, ...).
            ``input_transform`` is fixed to ``'multiple_select'``
            (see :class:`MultiLevelDecodeHead`).
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 channels: int,
                 in_index: Sequence[int],
                 deep_supervision: bool = False,
                 ds_loss_weight: Union[float, Sequence[float]] = 1.0,
                 ds_inference: str = 'last',
                 prune_level: Optional[int] = None,
                 **kwargs):
        super().__init__(in_channels, channels, in_index, **kwargs)
        name, levels = type(self).__name__, self.num_levels
        if ds_inference not in DS_INFERENCE:
            raise ValueError(f'{name}: ds_inference must be one of '
                             f'{DS_INFERENCE}, got {ds_inference!r}')
        self.deep_supervision = deep_supervision
        self.ds_inference = ds_inference
        self.prune_level = self._check_prune_level(prune_level)
        widths = self.decoder_channels

        def width(i: int, j: int) -> int:
            return self.in_channels[i] if j == 0 else widths[i]

        # nodes[f'{i}_{j}'] computes X[i, j]; column by column in forward.
        self.nodes = nn.ModuleDict()
        for j in range(1, levels):
            for i in range(levels - j):
                node_in = (self.in_channels[i] + (j - 1) * widths[i] +
                           width(i + 1, j - 1))
                self.nodes[f'{i}_{j}'] = self._block(node_in, widths[i])

        self.ds_loss_weights: List[float] = []
        self.ds_convs = None
        if not deep_supervision:
            return
        num_extra = levels - 2
        if num_extra < 1:
            raise ValueError(
                f'{name}: deep_supervision needs at least 3 levels (the top '
                f'row has {levels - 1} node(s)), got in_index={in_index}')
        if isinstance(ds_loss_weight, (int, float)):
            weights = [float(ds_loss_weight)] * num_extra
        else:
            weights = [float(w) for w in ds_loss_weight]
        if len(weights) != num_extra or min(weights) < 0:
            raise ValueError(
                f'{name}: ds_loss_weight must be a non-negative number or '
                f'{num_extra} of them (one per X[0,1..{num_extra}]), got '
                f'{ds_loss_weight!r}')
        self.ds_loss_weights = weights
        self.ds_convs = nn.ModuleList(
            nn.Conv2d(channels, self.out_channels, kernel_size=1)
            for _ in range(num_extra))
        # the extra classifiers start like conv_seg (BaseDecodeHead's
        # default init_cfg: Normal(std=0.01) on conv_seg only)
        init = self.init_cfg
        if isinstance(init, dict) and init.get('override') == dict(
                name='conv_seg'):
            self.init_cfg = dict(
                init, override=[dict(name='conv_seg'),
                                dict(name='ds_convs')])

    def _check_prune_level(self, prune_level: Optional[int]) -> Optional[int]:
        name, top = type(self).__name__, self.num_levels - 1
        if prune_level is None:
            return None
        if (isinstance(prune_level, bool) or not isinstance(prune_level, int)
                or not 1 <= prune_level <= top):
            raise ValueError(
                f'{name}: prune_level must be None or an int in 1..{top} '
                f'(UNet++ L^1..L^{top} on {self.num_levels} levels), got '
                f'{prune_level!r}')
        if prune_level < top and not self.deep_supervision:
            raise ValueError(
                f'{name}: prune_level={prune_level} classifies '
                f'X[0,{prune_level}] with its deep-supervision classifier: '
                'set deep_supervision=True (and train with it), or '
                f'prune_level=None / {top}')
        return prune_level

    def _top_row(self, inputs: Sequence[Tensor],
                 depth: Optional[int] = None) -> List[Tensor]:
        """Top-row nodes ``X[0,1..depth]`` of the nested grid, computing
        only the nodes ``X[i,j]`` with ``i + j <= depth`` (default
        ``depth = L-1``: the whole grid). Column by column, in the same
        order for every depth, so a pruned node equals the full grid's one
        bit for bit."""
        depth = self.num_levels - 1 if depth is None else depth
        grid = [[x] for x in self._levels(inputs)[:depth + 1]]
        for j in range(1, depth + 1):
            for i in range(depth + 1 - j):
                up = self._upsample(grid[i + 1][j - 1], grid[i][0])
                grid[i].append(self.nodes[f'{i}_{j}'](
                    torch.cat(grid[i] + [up], dim=1)))
        return grid[0][1:]

    def _forward_feature(self, inputs: Sequence[Tensor]) -> Tensor:
        """Pre-classifier feature ``X[0,L-1]`` (the input of ``conv_seg``;
        never pruned), shape (N, channels, H0, W0) with ``H0, W0`` the size
        of the finest selected level."""
        return self._top_row(inputs)[-1]

    def _ds_logits(self, feats: List[Tensor]) -> List[Tensor]:
        """Logits of ``X[0,1..k]`` (``feats``, ``k <= L-2``) through their
        deep-supervision classifiers ``ds_convs[0..k-1]``."""
        outs = []
        for conv, feat in zip(self.ds_convs, feats):
            if self.dropout is not None:
                feat = self.dropout(feat)
            outs.append(conv(feat))
        return outs

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        """Segmentation logits of ``X[0,L-1]``, or in eval mode with
        ``prune_level=d`` of ``X[0,d]`` (UNet++ ``L^d``); with deep
        supervision and ``ds_inference='mean'``, the log of the mean
        probability of the computed top-row outputs."""
        depth = None if self.training else self.prune_level
        top = self._top_row(inputs, depth)
        if len(top) == self.num_levels - 1:
            logits = self.cls_seg(top[-1])
            extra = (self._ds_logits(top[:-1])
                     if self.deep_supervision else [])
        else:  # pruned: X[0,d] is classified by ds_convs[d-1]
            extra = self._ds_logits(top)
            logits = extra.pop()
        if self.deep_supervision and self.ds_inference == 'mean':
            return merge_probabilities(extra + [logits])
        return logits

    def loss(self, inputs: Tuple[Tensor], batch_data_samples: SampleList,
             train_cfg: ConfigType) -> dict:
        """Decode losses of ``X[0,L-1]``, plus ``<loss_name>_ds<j>`` for
        every deep-supervision output. Always the whole grid (pruning is
        for inference only)."""
        top = self._top_row(inputs)
        losses = self.loss_by_feat(self.cls_seg(top[-1]), batch_data_samples)
        if not self.deep_supervision:
            return losses
        seg_label = self._stack_batch_gt(batch_data_samples)
        for j, (logits, weight) in enumerate(
                zip(self._ds_logits(top[:-1]), self.ds_loss_weights),
                start=1):
            extra = self._decode_losses(logits, seg_label)
            for key, value in extra.items():
                if key.startswith('loss_'):
                    losses[f'{key}_ds{j}'] = value * weight
        return losses

    def _decode_losses(self, seg_logits: Tensor, seg_label: Tensor) -> dict:
        """The decode losses of mmseg's ``loss_by_feat`` for an extra
        output, without its ``acc_seg`` (a top-k over the logits and a host
        sync, discarded for the extra outputs); ``seg_label`` (N, 1, H, W)
        is stacked once for all of them."""
        seg_logits = resize(
            seg_logits,
            size=seg_label.shape[2:],
            mode='bilinear',
            align_corners=self.align_corners)
        seg_weight = (None if self.sampler is None else
                      self.sampler.sample(seg_logits, seg_label))
        label = seg_label.squeeze(1)
        losses_decode = (self.loss_decode if isinstance(
            self.loss_decode, nn.ModuleList) else [self.loss_decode])
        out = {}
        for loss_decode in losses_decode:
            value = loss_decode(
                seg_logits,
                label,
                weight=seg_weight,
                ignore_index=self.ignore_index)
            name = loss_decode.loss_name
            out[name] = out[name] + value if name in out else value
        return out
