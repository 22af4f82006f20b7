from .logit_adjustment import (LogitAdjustedCascadeEncoderDecoder,
                               LogitAdjustedEncoderDecoder, LogitAdjustment,
                               LogitAdjustMixin, with_logit_adjustment)

__all__ = [
    'LogitAdjustedCascadeEncoderDecoder', 'LogitAdjustedEncoderDecoder',
    'LogitAdjustment', 'LogitAdjustMixin', 'with_logit_adjustment'
]
