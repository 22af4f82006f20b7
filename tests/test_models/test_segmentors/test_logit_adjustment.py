"""Post-hoc logit adjustment: tau = 0 is the plain model bit for bit, the
prediction is exactly argmax(z - tau log pi) of the plain model's logits,
build-time errors name the field."""
import numpy as np
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmseg_longtail  # noqa: F401
from mmseg_longtail.models.segmentors import (LogitAdjustment,
                                              with_logit_adjustment)
from tests.tiny_runner import tiny_model

COUNTS = [5000, 1000, 300, 40, 2]
init_default_scope('mmseg')  # as the runner does: SegDataPreProcessor


def build(tau=None, **extra):
    cfg = tiny_model()
    if tau is not None:
        cfg['type'] = 'LogitAdjustedEncoderDecoder'
        cfg['test_cfg'] = dict(mode='whole', logit_adjust=dict(
            class_counts=COUNTS, tau=tau, **extra))
    torch.manual_seed(0)
    model = MODELS.build(ConfigDict(cfg))
    model.init_weights()
    return model.eval()


def batch(seed=0):
    gen = torch.Generator().manual_seed(seed)
    inputs = torch.rand(3, 3, 16, 16, generator=gen) * 255
    samples = []
    for ori in [(16, 16), (21, 13), (16, 16)]:  # a resize and a flip too
        s = SegDataSample(metainfo=dict(
            ori_shape=ori, img_shape=(16, 16), pad_shape=(16, 16),
            padding_size=[0, 0, 0, 0], flip=ori == (21, 13),
            flip_direction='horizontal'))
        s.gt_sem_seg = PixelData(data=torch.zeros(1, *ori, dtype=torch.long))
        samples.append(s)
    return dict(inputs=list(inputs), data_samples=samples)


def outputs(model):
    with torch.no_grad():
        return model.test_step(batch())


def test_tau_zero_is_bit_identical():
    plain, zero = outputs(build()), outputs(build(tau=0.0))
    for a, b in zip(plain, zero):
        assert torch.equal(a.seg_logits.data, b.seg_logits.data)
        assert torch.equal(a.pred_sem_seg.data, b.pred_sem_seg.data)
    # no logit_adjust at all in a LogitAdjusted model: plain too
    cfg = tiny_model()
    cfg['type'] = 'LogitAdjustedEncoderDecoder'
    torch.manual_seed(0)
    model = MODELS.build(ConfigDict(cfg))
    model.init_weights()
    for a, b in zip(plain, outputs(model.eval())):
        assert torch.equal(a.pred_sem_seg.data, b.pred_sem_seg.data)


@pytest.mark.parametrize('tau', [0.5, 1.0, 2.5, -1.0])
def test_prediction_is_argmax_of_adjusted_logits(tau):
    plain = outputs(build())
    adjusted = outputs(build(tau=tau))
    n = np.asarray(COUNTS, dtype=np.float64)
    log_pi = torch.from_numpy(np.log(n / n.sum())).float()
    changed = 0
    for a, b in zip(plain, adjusted):
        z = a.seg_logits.data
        assert torch.equal(z, b.seg_logits.data)  # logits stay raw
        expected = (z - (tau * log_pi).view(-1, 1, 1)).argmax(0,
                                                              keepdim=True)
        assert torch.equal(b.pred_sem_seg.data, expected)
        changed += int((b.pred_sem_seg.data != a.pred_sem_seg.data).sum())
    assert changed > 0


def test_state_dict_is_the_plain_models():
    plain, adjusted = build(), build(tau=1.0)
    assert plain.state_dict().keys() == adjusted.state_dict().keys()
    adjusted.load_state_dict(plain.state_dict())


@pytest.mark.parametrize('logit_adjust, error, match', [
    (dict(tau=1.0), ValueError, 'test_cfg.logit_adjust must be a dict with '
     'class_counts'),
    (dict(class_counts=[1, 2, 3]), ValueError,
     'test_cfg.logit_adjust.class_counts has 3 counts but num_classes is 5'),
    (dict(class_counts=COUNTS, tau='high'), ValueError,
     'test_cfg.logit_adjust.tau must be a number'),
    (dict(class_counts=COUNTS, scale=2), ValueError,
     r"unknown keys \['scale'\]"),
    (dict(class_counts='missing.json'), FileNotFoundError,
     'test_cfg.logit_adjust.class_counts: .*not found'),
])
def test_build_errors_name_the_field(logit_adjust, error, match):
    cfg = tiny_model()
    cfg['type'] = 'LogitAdjustedEncoderDecoder'
    cfg['test_cfg'] = dict(mode='whole', logit_adjust=logit_adjust)
    with pytest.raises(error, match=match):
        MODELS.build(ConfigDict(cfg))


def test_with_logit_adjustment_any_segmentor():
    from mmseg.models.segmentors import EncoderDecoder

    class MySegmentor(EncoderDecoder):
        pass

    cls = with_logit_adjustment(MySegmentor, register=False)
    assert cls.__name__ == 'LogitAdjustedMySegmentor'
    assert MODELS.get('LogitAdjustedCascadeEncoderDecoder') is not None


def test_zero_count_stays_finite():
    adjust = LogitAdjustment.from_counts([10, 0, 5], tau=1.0)
    assert torch.isfinite(adjust.log_prior).all()
    z = torch.zeros(3, 2, 2)
    # the unseen class (count clamped to 1) has the smallest prior: it wins
    assert (adjust.predict(z) == 1).all()
