"""Long-tail losses, registered in mmseg's ``MODELS`` registry on import."""
from .auc_loss import AUCLoss
from .balanced_softmax_loss import BalancedSoftmaxLoss
from .base import LongTailLoss, effective_number_weights
from .blv_loss import BLVLoss
from .class_balanced_loss import ClassBalancedLoss
from .eqlv2_loss import EQLv2Loss
from .equalized_focal_loss import EqualizedFocalLoss
from .focal_tversky_loss import FocalTverskyLoss
from .generalized_dice_loss import (GeneralizedDiceLoss,
                                    generalized_dice_weights)
from .ldam_loss import LDAMLoss
from .pat_loss import PATLoss
from .recall_loss import RecallLoss
from .region_loss import RegionLoss
from .seesaw_loss import SeesawLoss
from .soft_dice_loss import SoftDiceLoss
from .soft_jaccard_loss import SoftJaccardLoss
from .softmax_focal_loss import SoftmaxFocalLoss, softmax_focal_pixel_loss
from .topk_cross_entropy_loss import TopKCrossEntropyLoss

__all__ = [
    'LongTailLoss', 'effective_number_weights', 'SoftmaxFocalLoss',
    'softmax_focal_pixel_loss', 'ClassBalancedLoss', 'BalancedSoftmaxLoss',
    'LDAMLoss', 'BLVLoss', 'PATLoss', 'RegionLoss', 'SoftJaccardLoss',
    'SoftDiceLoss', 'GeneralizedDiceLoss', 'generalized_dice_weights',
    'RecallLoss', 'SeesawLoss', 'TopKCrossEntropyLoss', 'FocalTverskyLoss',
    'EQLv2Loss', 'EqualizedFocalLoss', 'AUCLoss'
]
