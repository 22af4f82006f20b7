from .attention_unet_head import AttentionGate, AttentionUNetHead
from .ceco import CeCoBranch, simplex_etf
from .ceco_head import (CeCoASPPHead, CeCoAttentionUNetHead,
                        CeCoDepthwiseSeparableASPPHead, CeCoFCNHead,
                        CeCoMixin, CeCoUNetPlusPlusHead, CeCoUPerHead,
                        with_ceco)
from .multilevel_head import MultiLevelDecodeHead
from .unetpp_head import UNetPlusPlusHead, merge_probabilities

__all__ = [
    'AttentionGate', 'AttentionUNetHead', 'CeCoASPPHead',
    'CeCoAttentionUNetHead', 'CeCoBranch', 'CeCoDepthwiseSeparableASPPHead',
    'CeCoFCNHead', 'CeCoMixin', 'CeCoUNetPlusPlusHead', 'CeCoUPerHead',
    'MultiLevelDecodeHead', 'UNetPlusPlusHead', 'merge_probabilities',
    'simplex_etf', 'with_ceco'
]
