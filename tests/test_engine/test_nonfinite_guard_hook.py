"""NonFiniteGuardHook: a NaN / inf loss or gradient stops training (or
skips the step) with a message naming the term, the iteration and the work
dir; real mmengine Runner training on the built-in synthetic data."""
import json

import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from mmseg.registry import MODELS
from torch import nn

from mmseg_longtail.engine import NonFiniteError, NonFiniteGuardHook
from mmseg_longtail.utils.run_files import (pop_stop_reason,
                                            write_stop_reason)
from tests.tiny_runner import build_runner, tiny_cfg, tiny_model


@MODELS.register_module(force=True)
class _PoisonedCELoss(nn.Module):
    """CE that turns bad at the given 0-based iterations: ``'loss'`` makes
    the value NaN, ``'grad'`` keeps the value finite but makes the gradient
    NaN (d sqrt(u)/du is inf at u = 0, times 0)."""

    def __init__(self, at=(), kind='loss', loss_name='loss_poison',
                 **kwargs):
        super().__init__()
        self.at, self.kind, self._loss_name = set(at), kind, loss_name

    def forward(self, logits, label, weight=None, ignore_index=255,
                **kwargs):
        loss = F.cross_entropy(logits, label, ignore_index=ignore_index)
        it = MessageHub.get_current_instance().get_info('iter', 0)
        if it in self.at:
            if self.kind == 'loss':
                loss = loss * float('nan')
            else:
                loss = loss + 0.0 * torch.sqrt(
                    (logits - logits.detach()).abs().sum())
        return loss

    @property
    def loss_name(self):
        return self._loss_name


def _train(tmp_path, name, max_iters, at=(), kind='loss', **hook):
    hooks = [dict(type='NonFiniteGuardHook', **hook)]
    cfg = tiny_cfg(
        tmp_path / name, max_iters=max_iters, custom_hooks=hooks,
        model=tiny_model(loss_decode=dict(type='_PoisonedCELoss', at=at,
                                          kind=kind)))
    runner = build_runner(cfg)
    return runner


def _params(runner):
    # parameters only: BN's running statistics move in the forward pass,
    # before any loss exists to check
    return {k: v.detach().clone()
            for k, v in runner.model.named_parameters()}


def test_stop_on_nan_loss_names_term_iteration_and_work_dir(tmp_path):
    reference = _train(tmp_path, 'ref', max_iters=2)
    reference.train()
    runner = _train(tmp_path, 'nan', max_iters=5, at={2})
    with pytest.raises(NonFiniteError) as e:
        runner.train()
    msg = str(e.value)
    assert 'decode.loss_poison' in msg and 'iteration 3' in msg
    assert str(tmp_path / 'nan') in msg
    # the bad step was not applied: the weights are those after 2 steps
    after, ref = _params(runner), _params(reference)
    assert all(torch.equal(after[k], ref[k]) for k in ref)
    # the launcher reads (and clears) the reason
    stop = tmp_path / 'nan' / 'nonfinite.json'
    assert 'iteration 3' in json.loads(stop.read_text())['reason']
    assert 'decode.loss_poison' in pop_stop_reason(str(tmp_path / 'nan'))
    assert not stop.exists() and pop_stop_reason(str(tmp_path / 'nan')) \
        is None


def test_stop_on_nan_gradient_with_finite_loss(tmp_path):
    runner = _train(tmp_path, 'grad', max_iters=4, at={1}, kind='grad')
    with pytest.raises(NonFiniteError, match=r'non-finite gradient of '
                       r'parameter #\d+ .* at iteration 2'):
        runner.train()
    assert all(torch.isfinite(v).all() for v in _params(runner).values())


def test_skip_drops_the_bad_steps_and_trains_on(tmp_path):
    runner = _train(tmp_path, 'skip', max_iters=4, at={1, 2}, action='skip')
    runner.train()
    assert runner.iter == 4
    hook = next(h for h in runner.hooks if isinstance(h, NonFiniteGuardHook))
    assert hook.skipped == 0  # reset by the good step after the bad ones
    assert all(torch.isfinite(v).all() for v in _params(runner).values())
    # skipping too many in a row stops anyway
    runner = _train(tmp_path, 'skip2', max_iters=6, at={1, 2, 3},
                    action='skip', max_skips=2)
    with pytest.raises(NonFiniteError, match='iteration 4 .* after 2 '
                       'skipped steps in a row'):
        runner.train()


def test_without_the_guard_nan_trains_on(tmp_path):
    """What the guard prevents (and its off switch): mmengine applies the
    NaN step."""
    runner = _train(tmp_path, 'off', max_iters=3, at={1}, enabled=False)
    runner.train()
    weights = list(_params(runner).values())
    assert not all(torch.isfinite(v).all() for v in weights)


@pytest.mark.parametrize('kwargs,match', [
    (dict(action='warn'), r"action must be one of \('stop', 'skip'\), got "
     r"'warn'"),
    (dict(max_skips=0), 'max_skips must be >= 1'),
])
def test_bad_options_name_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NonFiniteGuardHook(**kwargs)


def test_runtime_base_turns_the_guard_on(repo_root):
    from mmengine.config import Config
    cfg = Config.fromfile(str(repo_root / 'configs/_base_/default_runtime.py'))
    assert [h['type'] for h in cfg.custom_hooks] == [
        'NonFiniteGuardHook', 'ExactResumeHook', 'PreemptionHook',
        'MetricWorkDirHook']


def test_stop_reason_file_round_trip(tmp_path):
    write_stop_reason(str(tmp_path), 'non-finite loss x at iteration 7')
    assert pop_stop_reason(str(tmp_path)) == \
        'non-finite loss x at iteration 7'
