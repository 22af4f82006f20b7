"""ExactResumeHook's CUDA settings: with CUDA it turns on cuDNN's
deterministic algorithms and torch's deterministic implementations (warn
only) for the run, warns when cuDNN's autotuner is on, and restores every
setting after the run; without CUDA, or with cuda_deterministic=False,
nothing changes. The runtime base leaves the autotuner off."""
import os

import pytest
import torch
from mmengine.config import Config

from mmseg_longtail.engine.hooks import ExactResumeHook
from tests.conftest import REPO_ROOT


@pytest.fixture
def restore_torch_settings():
    saved = (torch.backends.cudnn.deterministic,
             torch.backends.cudnn.benchmark,
             torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled())
    yield
    torch.backends.cudnn.deterministic = saved[0]
    torch.backends.cudnn.benchmark = saved[1]
    torch.use_deterministic_algorithms(saved[2], warn_only=saved[3])


def settings():
    return (torch.backends.cudnn.deterministic,
            torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled())


def test_with_cuda_deterministic_for_the_run_only(monkeypatch,
                                                  restore_torch_settings):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setenv('CUBLAS_WORKSPACE_CONFIG', ':16:8')
    torch.backends.cudnn.deterministic = False
    torch.use_deterministic_algorithms(False)
    before = settings()
    hook = ExactResumeHook()
    hook._set_cuda_deterministic()
    assert settings() == (True, True, True)
    assert os.environ['CUBLAS_WORKSPACE_CONFIG'] == ':16:8'  # kept
    hook.after_run(None)
    assert settings() == before


def test_autotuner_on_is_named(monkeypatch, restore_torch_settings,
                               capsys):
    from mmengine.logging import MMLogger
    MMLogger.get_instance('exact_resume_cuda_test')
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    torch.backends.cudnn.benchmark = True
    hook = ExactResumeHook()
    hook._set_cuda_deterministic()
    hook.after_run(None)
    out = capsys.readouterr()
    assert 'env_cfg.cudnn_benchmark=False' in out.out + out.err


@pytest.mark.parametrize('cuda, option', [(False, True), (True, False)])
def test_nothing_changes(monkeypatch, restore_torch_settings, cuda, option):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: cuda)
    before = settings()
    hook = ExactResumeHook(cuda_deterministic=option)
    hook._set_cuda_deterministic()
    assert settings() == before
    hook.after_run(None)
    assert settings() == before


def test_option_is_checked_and_runtime_base_keeps_autotuner_off():
    with pytest.raises(TypeError, match='ExactResumeHook: '
                       'cuda_deterministic must be True or False'):
        ExactResumeHook(cuda_deterministic='yes')
    cfg = Config.fromfile(str(REPO_ROOT / 'configs/_base_/'
                              'default_runtime.py'))
    assert cfg.env_cfg.cudnn_benchmark is False
    assert 'ExactResumeHook' in [h['type'] for h in cfg.custom_hooks]
