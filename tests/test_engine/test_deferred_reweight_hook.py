"""Deferred re-weighting: the schedule, the hook on mmseg's and this
package's losses in a real Runner, the exact switch iteration, resume, and
LDAM's own drw_start_iter on the same mechanism."""
import numpy as np
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.logging import MessageHub
from mmseg.registry import HOOKS, MODELS

import mmseg_longtail  # noqa: F401
from mmseg_longtail.engine import DeferredReweightHook, head_losses
from mmseg_longtail.models.losses import effective_number_weights
from mmseg_longtail.models.losses.reweighting import DeferredReweighting
from tests.tiny_runner import (NUM_CLASSES, build_runner, synthetic, tiny_cfg,
                               tiny_model)

WEIGHTS = [1.0, 2.0, 3.0, 4.0, 5.0]
COUNTS = [1000, 400, 100, 30, 5]


@HOOKS.register_module(force=True)
class WeightRecorderHook(Hook):
    """Records, before every iteration (after the DRW hook), the weights
    each loss will apply: ``class_weight`` of mmseg's losses, the
    ``class_weights()`` of this package's."""
    priority = 'LOW'
    records = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        model = runner.model
        row = dict(iter=runner.iter)
        for _, loss in head_losses(model):
            if hasattr(loss, 'deferred_active'):
                w = loss.class_weights(torch.zeros(1))
                row[loss.loss_name] = None if w is None else w.tolist()
            else:
                w = loss.class_weight
                row[loss.loss_name] = None if w is None else list(w)
        type(self).records.append(row)


@pytest.fixture(autouse=True)
def _clean_hub():
    hub = MessageHub.get_current_instance()
    old = hub.get_info('iter')
    WeightRecorderHook.records = []
    yield
    hub.update_info('iter', old)


@pytest.mark.parametrize('start, iteration, active', [
    (3, None, False), (3, 0, False), (3, 2, False), (3, 3, True),
    (3, 100, True), (0, 0, True)])
def test_schedule_is_a_function_of_the_iteration(start, iteration, active):
    schedule = DeferredReweighting(start, WEIGHTS)
    assert schedule.active(iteration) == active
    MessageHub.get_current_instance().update_info('iter', iteration)
    assert schedule.active_now() == active


@pytest.mark.parametrize('kwargs, match', [
    (dict(start_iter=-1, class_weight=WEIGHTS), 'start_iter must be an int'),
    (dict(start_iter=1.5, class_weight=WEIGHTS), 'start_iter must be an int'),
    (dict(start_iter=1), 'exactly one of class_weight'),
    (dict(start_iter=1, class_weight=WEIGHTS, class_counts=COUNTS),
     'exactly one of class_weight'),
    (dict(start_iter=1, class_weight=[1.0, -1.0]), 'class_weight must be'),
    (dict(start_iter=1, class_counts=COUNTS, beta=1.5), 'beta must lie'),
])
def test_hook_errors_name_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DeferredReweightHook(**kwargs)


def test_loss_switches_exactly_at_k():
    hub = MessageHub.get_current_instance()
    loss = MODELS.build(dict(type='SoftmaxFocalLoss', gamma=0.0,
                             class_weight=[1.0, 1.0, 2.0, 1.0, 1.0]))
    loss.set_deferred_weights(4, WEIGHTS)
    logits = torch.randn(2, NUM_CLASSES, 3, 3)
    label = torch.randint(0, NUM_CLASSES, (2, 3, 3))
    ce = torch.nn.functional.cross_entropy
    for it, weights in [(None, [1, 1, 2, 1, 1]), (3, [1, 1, 2, 1, 1]),
                        (4, [1, 2, 6, 4, 5]), (9, [1, 2, 6, 4, 5])]:
        hub.update_info('iter', it)
        w = torch.tensor(weights, dtype=torch.float32)
        torch.testing.assert_close(loss(logits, label),
                                   ce(logits, label, weight=w))
    with pytest.raises(ValueError, match='deferred weights have 4 entries'):
        loss.set_deferred_weights(1, [1.0, 2.0, 3.0, 4.0])


def _run(tmp_path, name, hook, max_iters, resume=False, ckpt=1000):
    # no ignored pixels: mmseg 1.2.2's CrossEntropyLoss with class_weight
    # indexes the weights with ignore_index (an IndexError for 255)
    loss_decode = [
        dict(type='CrossEntropyLoss', loss_weight=1.0, loss_name='loss_ce'),
        dict(type='SoftmaxFocalLoss', gamma=0.0, loss_name='loss_focal',
             class_weight=[1.0, 1.0, 1.0, 1.0, 2.0]),
    ]
    cfg = tiny_cfg(tmp_path / name, max_iters=max_iters,
                   model=tiny_model(loss_decode),
                   train_dataset=synthetic(8, ignore_rows=0),
                   custom_hooks=[hook, dict(type='WeightRecorderHook')],
                   checkpoint_interval=ckpt)
    cfg.experiment_name = f'{name}_{max_iters}_{resume}'
    cfg.resume = resume
    runner = build_runner(cfg)
    runner.train()
    return [dict(r) for r in WeightRecorderHook.records]


def test_hook_switches_exactly_at_k_and_survives_resume(tmp_path):
    k = 3
    hook = dict(type='DeferredReweightHook', start_iter=k,
                class_weight=WEIGHTS)
    full = _run(tmp_path, 'full', hook, max_iters=6)
    assert [r['iter'] for r in full] == list(range(6))
    for r in full:
        on = r['iter'] >= k
        assert r['loss_ce'] == (WEIGHTS if on else None)
        focal = [1.0, 2.0, 3.0, 4.0, 10.0] if on else [1, 1, 1, 1, 2.0]
        assert r['loss_focal'] == pytest.approx(focal)
    # interrupted after iteration 2 (checkpoint iter_2), resumed to 6
    WeightRecorderHook.records = []
    _run(tmp_path, 'resumed', hook, max_iters=2, ckpt=2)
    WeightRecorderHook.records = []
    resumed = _run(tmp_path, 'resumed', hook, max_iters=6, resume=True)
    assert [r['iter'] for r in resumed] == list(range(2, 6))
    assert resumed == full[2:]


def test_hook_with_effective_number_weights(tmp_path):
    hook = dict(type='DeferredReweightHook', start_iter=1,
                class_counts=COUNTS, beta=0.99, loss_names=['loss_ce'])
    records = _run(tmp_path, 'cb', hook, max_iters=2)
    cb = effective_number_weights(np.array(COUNTS, float), 0.99)
    assert records[0]['loss_ce'] is None
    assert records[1]['loss_ce'] == pytest.approx(cb.tolist())
    # loss_focal was not selected
    assert records[1]['loss_focal'] == pytest.approx([1, 1, 1, 1, 2.0])


def test_hook_checks_lengths_and_names(tmp_path):
    with pytest.raises(ValueError, match='class_weight gives 3 weights but '
                       'FCNHead predicts 5'):
        _run(tmp_path, 'bad', dict(type='DeferredReweightHook', start_iter=1,
                                   class_weight=[1, 2, 3]), max_iters=1)
    with pytest.raises(ValueError, match=r"loss_names \['loss_x'\] not in"):
        _run(tmp_path, 'bad2', dict(type='DeferredReweightHook',
                                    start_iter=1, class_weight=WEIGHTS,
                                    loss_names=['loss_x']), max_iters=1)


def test_ldam_drw_is_the_same_schedule():
    hub = MessageHub.get_current_instance()
    loss = MODELS.build(dict(type='LDAMLoss', class_counts=COUNTS, s=1.0,
                             drw_start_iter=5, drw_beta=0.99))
    assert loss.deferred.start_iter == 5
    cb = effective_number_weights(np.array(COUNTS, float), 0.99)
    np.testing.assert_allclose(loss.drw_weights.numpy(), cb, rtol=1e-6)
    hub.update_info('iter', 4)
    assert not loss.drw_active() and loss.class_weights(
        torch.zeros(1)) is None
    hub.update_info('iter', 5)
    assert loss.drw_active()
    torch.testing.assert_close(loss.class_weights(torch.zeros(1)),
                               torch.tensor(cb, dtype=torch.float32))
