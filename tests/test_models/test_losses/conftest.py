"""Fixtures of the loss tests; cases and references live in loss_cases.py.

This folder is put on sys.path so that test modules can import
``loss_cases`` under any pytest import mode.
"""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loss_cases import CASES  # noqa: E402


@pytest.fixture(params=sorted(CASES))
def case(request):
    """(name, config) of every loss variant."""
    return request.param, CASES[request.param]


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one thread avoids OpenMP hand-off costs (and noise
    from other processes on a shared machine)."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _drw_iteration():
    """LDAM's DRW reads the runner's iteration from the message hub; give
    every test a known one and restore it afterwards."""
    from mmengine.logging import MessageHub
    hub = MessageHub.get_current_instance()
    old = hub.get_info('iter')
    hub.update_info('iter', 10)
    yield hub
    hub.update_info('iter', old)
