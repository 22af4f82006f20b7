"""torch's thread count on CPU: the process's share of the cores, one left
to the loader's workers, OMP_NUM_THREADS winning."""
import pytest
import torch
from mmengine.config import Config

from mmseg_longtail.engine import cpu_threads
from mmseg_longtail.engine.cpu_threads import cpu_thread_count, set_cpu_threads


@pytest.mark.parametrize('cores, processes, workers, expected', [
    (2, 1, 1, 1),    # the quick start on 2 cores: one thread
    (2, 1, 0, 2),    # no loader workers: every core
    (16, 1, 4, 15),
    (16, 4, 2, 3),   # torchrun with 4 processes: 4 cores each, one to loaders
    (2, 4, 2, 1),    # more processes than cores: at least one
])
def test_thread_count(cores, processes, workers, expected):
    assert cpu_thread_count(cores, processes, workers) == expected


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_set_on_cpu_unless_the_environment_says(monkeypatch,
                                                restore_threads):
    cfg = Config(dict(train_dataloader=dict(num_workers=1),
                      test_dataloader=dict(num_workers=0)))
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.setattr(cpu_threads, 'available_cores', lambda: 8)
    for var in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'LOCAL_WORLD_SIZE'):
        monkeypatch.delenv(var, raising=False)
    assert set_cpu_threads(cfg) == 7 == torch.get_num_threads()
    assert set_cpu_threads(cfg, 'test_dataloader') == 8
    monkeypatch.setenv('LOCAL_WORLD_SIZE', '2')
    assert set_cpu_threads(cfg) == 3 == torch.get_num_threads()
    torch.set_num_threads(5)
    monkeypatch.setenv('OMP_NUM_THREADS', '2')
    assert set_cpu_threads(cfg) is None
    assert torch.get_num_threads() == 5  # left as the environment set it


def test_nothing_changes_with_cuda(monkeypatch, restore_threads):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.delenv('OMP_NUM_THREADS', raising=False)
    torch.set_num_threads(3)
    assert set_cpu_threads(Config(dict())) is None
    assert torch.get_num_threads() == 3
