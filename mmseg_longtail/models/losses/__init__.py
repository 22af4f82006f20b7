"""Long-tail losses, registered in mmseg's ``MODELS`` registry on import."""
from .balanced_softmax_loss import BalancedSoftmaxLoss
from .base import LongTailLoss, effective_number_weights
from .blv_loss import BLVLoss
from .class_balanced_loss import ClassBalancedLoss
from .generalized_dice_loss import (GeneralizedDiceLoss,
                                    generalized_dice_weights)
from .ldam_loss import LDAMLoss
from .pat_loss import PATLoss
from .region_loss import RegionLoss
from .soft_dice_loss import SoftDiceLoss
from .soft_jaccard_loss import SoftJaccardLoss
from .softmax_focal_loss import SoftmaxFocalLoss, softmax_focal_pixel_loss

__all__ = [
    'LongTailLoss', 'effective_number_weights', 'SoftmaxFocalLoss',
    'softmax_focal_pixel_loss', 'ClassBalancedLoss', 'BalancedSoftmaxLoss',
    'LDAMLoss', 'BLVLoss', 'PATLoss', 'RegionLoss', 'SoftJaccardLoss',
    'SoftDiceLoss', 'GeneralizedDiceLoss', 'generalized_dice_weights'
]
