"""CeCo on any decode head: a mixin and its registered variants.

``CeCoMixin`` adds the :class:`CeCoBranch` to a decode head without changing
its forward pass. It taps the head's pre-classifier feature at the one
place every mmseg decode head shares, ``cls_seg(feat)``, and only inside
``loss()``. So

* ``predict`` / ``tensor`` modes run the unchanged head (same logits, bit
  for bit; the branch costs nothing at inference);
* heads whose ``_forward_feature`` is not their real pre-classifier feature
  still work: ``DepthwiseSeparableASPPHead`` inherits ``ASPPHead``'s, which
  skips the c1 decoder and the separable bottleneck;
* the config stays flat (``num_classes``, ``loss_decode`` overrides from
  other bases apply unchanged) and the state dict keeps the plain head's
  keys plus ``ceco.*``, so weights move between the two with
  ``strict=False``.

Registered variants: ``CeCoFCNHead``, ``CeCoASPPHead``,
``CeCoDepthwiseSeparableASPPHead``, ``CeCoUPerHead``,
``CeCoUNetPlusPlusHead``, ``CeCoAttentionUNetHead``; :func:`with_ceco`
makes one for any other head.
"""
from typing import Optional, Tuple, Type

from mmseg.models.decode_heads import (ASPPHead, DepthwiseSeparableASPPHead,
                                       FCNHead, UPerHead)
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, SampleList
from torch import Tensor

from mmseg_longtail.models.losses.base import check_head_losses
from .attention_unet_head import AttentionUNetHead
from .ceco import CeCoBranch
from .unetpp_head import UNetPlusPlusHead


class CeCoMixin:
    """Adds the CeCo loss (``loss_ceco``) to a :class:`BaseDecodeHead`.

    Put it first in the bases: ``class CeCoFooHead(CeCoMixin, FooHead)``.

    Args:
        ceco_cfg (dict): arguments of :class:`CeCoBranch` except those taken
            from the head (``in_channels`` = ``channels``, ``num_classes``,
            ``ignore_index``, ``align_corners``); ``class_counts`` is
            required, ``norm_cfg`` defaults to the head's (BN if it has
            none).
        *args, **kwargs: the head's own arguments.
    """

    def __init__(self, *args, ceco_cfg: Optional[dict] = None, **kwargs):
        super().__init__(*args, **kwargs)
        check_head_losses(self)
        name = type(self).__name__
        if not isinstance(ceco_cfg, dict):
            raise ValueError(
                f'{name}: ceco_cfg must be a dict with at least '
                f'class_counts, got {ceco_cfg!r}')
        cfg = dict(ceco_cfg)
        taken = {'in_channels', 'num_classes', 'ignore_index',
                 'align_corners'} & set(cfg)
        if taken:
            raise ValueError(f'{name}: ceco_cfg must not set {sorted(taken)}'
                             ' (they come from the head)')
        cfg.setdefault('norm_cfg', self.norm_cfg or dict(type='BN'))
        self.ceco = CeCoBranch(
            in_channels=self.channels,
            num_classes=self.num_classes,
            ignore_index=self.ignore_index,
            align_corners=self.align_corners,
            **cfg)
        self._ceco_tap = False
        self._ceco_feat = None

    def cls_seg(self, feat: Tensor) -> Tensor:
        if self._ceco_tap:
            self._ceco_feat = feat  # the last call is the final classifier
        return super().cls_seg(feat)

    def loss(self, inputs: Tuple[Tensor], batch_data_samples: SampleList,
             train_cfg: ConfigType) -> dict:
        """The head's own losses plus ``loss_ceco``."""
        self._ceco_tap = True
        try:
            losses = super().loss(inputs, batch_data_samples, train_cfg)
            feat = self._ceco_feat
        finally:
            self._ceco_tap = False
            self._ceco_feat = None  # free the feature map
        if feat is None:
            raise RuntimeError(
                f'{type(self).__name__}: the head never called cls_seg(), so '
                'CeCo found no pre-classifier feature')
        seg_label = self._stack_batch_gt(batch_data_samples)
        losses[self.ceco.loss_name] = self.ceco(feat, seg_label)
        return losses


def with_ceco(head_cls: Type[BaseDecodeHead],
              register: bool = True) -> Type[BaseDecodeHead]:
    """``CeCo<Name>`` = :class:`CeCoMixin` + ``head_cls`` (registered in
    mmseg's MODELS unless ``register=False``), for heads not listed here.
    The head must classify with ``self.cls_seg(feat)``."""
    cls = type(f'CeCo{head_cls.__name__}', (CeCoMixin, head_cls), {
        '__doc__': f'{head_cls.__name__} with the CeCo training branch '
                   '(see :class:`CeCoMixin`).',
        '__module__': head_cls.__module__,
    })
    if register:
        MODELS.register_module(module=cls)
    return cls


@MODELS.register_module()
class CeCoFCNHead(CeCoMixin, FCNHead):
    """:class:`FCNHead` with the CeCo training branch (:class:`CeCoMixin`).
    """


@MODELS.register_module()
class CeCoASPPHead(CeCoMixin, ASPPHead):
    """:class:`ASPPHead` (DeepLabV3) with the CeCo training branch."""


@MODELS.register_module()
class CeCoDepthwiseSeparableASPPHead(CeCoMixin, DepthwiseSeparableASPPHead):
    """:class:`DepthwiseSeparableASPPHead` (DeepLabV3+) with the CeCo
    training branch; the tapped feature is the output of the separable
    bottleneck (after the c1 decoder)."""


@MODELS.register_module()
class CeCoUPerHead(CeCoMixin, UPerHead):
    """:class:`UPerHead` with the CeCo training branch (as in the paper)."""


@MODELS.register_module()
class CeCoUNetPlusPlusHead(CeCoMixin, UNetPlusPlusHead):
    """:class:`UNetPlusPlusHead` with the CeCo training branch on
    ``X[0,L-1]`` (deep-supervision outputs are not tapped)."""


@MODELS.register_module()
class CeCoAttentionUNetHead(CeCoMixin, AttentionUNetHead):
    """:class:`AttentionUNetHead` with the CeCo training branch."""
