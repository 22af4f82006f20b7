from .longtail_iou_metric import LongTailIoUMetric

__all__ = ['LongTailIoUMetric']
