"""Shared helpers of the CUDA tests.

Every test module here carries ``pytestmark = pytest.mark.cuda``: where
``torch.cuda.is_available()`` is False the tests are deselected (not
skipped) by tests/conftest.py, so a CPU run reports 0 skipped and lists
them as deselected. On a GPU node ``tools/misc/gpu_check.sh`` runs them.

The comparisons with the CPU are in float32 with TF32 off (cuDNN
convolutions and cuBLAS matmuls would otherwise round inputs to 10-bit
mantissas) and cuDNN's deterministic algorithms on.
"""
import sys
from pathlib import Path

import pytest
import torch

# the shared loss cases (tests/test_models/test_losses/loss_cases.py)
LOSS_TESTS = Path(__file__).resolve().parents[1] / 'test_models' / \
    'test_losses'
if str(LOSS_TESTS) not in sys.path:
    sys.path.insert(0, str(LOSS_TESTS))

# the device the tests compare against the CPU
DEVICE = 'cuda'


@pytest.fixture
def device() -> str:
    return DEVICE


@pytest.fixture(autouse=True)
def float32_exact():
    """TF32 off and deterministic cuDNN for the test, restored after."""
    matmul = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    with torch.backends.cudnn.flags(enabled=True, benchmark=False,
                                    deterministic=True, allow_tf32=False):
        yield
    torch.backends.cuda.matmul.allow_tf32 = matmul


@pytest.fixture(autouse=True)
def _drw_iteration():
    """LDAM's DRW reads the runner's iteration from the message hub: a
    known one (DRW active in the cases that have it), restored after."""
    from mmengine.logging import MessageHub
    hub = MessageHub.get_current_instance()
    old = hub.get_info('iter')
    hub.update_info('iter', 10)
    yield hub
    hub.update_info('iter', old)


def to_cpu(value):
    """Tensors (also inside lists, tuples and dicts) on the CPU."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_cpu(v) for v in value)
    return value
