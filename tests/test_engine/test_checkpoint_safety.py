"""SafeCheckpointRunner: torch's safe loader with mmengine's checkpoint
objects allow-listed (and nothing else), and atomic checkpoint writes."""
import pickle
import subprocess

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import _load_checkpoint

import mmseg_longtail  # noqa: F401
from mmseg_longtail.engine import SafeCheckpointRunner, checkpoint_safe_globals
from mmseg_longtail.utils.run_files import atomic_local_save
from tests.fault_runs import prestart, run_python
from tests.tiny_runner import build_runner, tiny_cfg

# the fork server of the tools' runs imports while pytest collects the tests
prestart()


class _WritesMarker:
    """Unpickling an instance runs ``open(path, 'w')``: a stand-in for a
    crafted checkpoint that runs code when it is loaded."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, 'w'))


def crafted_checkpoint(folder):
    marker = folder / 'pwned'
    path = folder / 'crafted.pth'
    torch.save(dict(state_dict={}, meta=dict(x=_WritesMarker(marker))), path)
    return path, marker


class _Getattr:
    """Unpickles as ``getattr(owner, name)``: the name under which
    HistoryBuffer's statistics methods are pickled; only those may come
    out of it."""

    def __init__(self, owner, name):
        self.owner, self.name = owner, name

    def __reduce__(self):
        return (getattr, (self.owner, self.name))


def mmengine_like(path):
    """What mmengine's checkpoints hold besides tensors: numpy scalars and
    arrays, history buffers (whose statistics methods pickle through
    getattr), nested dicts."""
    hub = dict(log_scalars=dict(loss=HistoryBuffer([1.0, 2.0], [1, 1])),
               runtime_info=dict(iter=np.int64(7), lr=np.float32(0.1)))
    torch.save(dict(meta=dict(iter=7, seed=np.int64(3)), message_hub=hub,
                    state_dict=dict(w=torch.ones(2))), path)


def test_allow_list_admits_mmengine_objects(tmp_path):
    path = tmp_path / 'ckpt.pth'
    mmengine_like(path)
    with pytest.raises(pickle.UnpicklingError, match='weights_only|Weights'):
        torch.load(path)  # torch's safe default refuses them
    with checkpoint_safe_globals():
        ckpt = _load_checkpoint(str(path), map_location='cpu')
    buffer = ckpt['message_hub']['log_scalars']['loss']
    assert isinstance(buffer, HistoryBuffer) and buffer.mean() == 1.5
    assert ckpt['message_hub']['runtime_info']['iter'] == 7
    assert torch.equal(ckpt['state_dict']['w'], torch.ones(2))
    # scoped: the allow-list is gone after the block
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)


@pytest.mark.parametrize('payload', [
    'marker', (subprocess.Popen, '__init__'), (HistoryBuffer, '__init__'),
    (HistoryBuffer, 'update')
], ids=['open', 'getattr-other-class', 'getattr-init', 'getattr-method'])
def test_allow_list_refuses_code(tmp_path, payload):
    if payload == 'marker':
        path, marker = crafted_checkpoint(tmp_path)
    else:
        path, marker = tmp_path / 'getattr.pth', None
        torch.save(dict(meta=_Getattr(*payload)), path)
    with checkpoint_safe_globals(), pytest.raises(pickle.UnpicklingError):
        _load_checkpoint(str(path), map_location='cpu')
    assert marker is None or not marker.exists()


def test_runner_resumes_its_checkpoint_and_refuses_a_crafted_one(tmp_path):
    """The runner of the plugin's runtime resumes what it wrote (message
    hub and all) with torch's safe loader, and refuses a crafted file:
    torch's error, no marker."""
    cfg = tiny_cfg(tmp_path / 'a', max_iters=2, checkpoint_interval=2)
    runner = build_runner(cfg)
    assert type(runner) is SafeCheckpointRunner
    runner.train()
    cfg = tiny_cfg(tmp_path / 'a', max_iters=3, checkpoint_interval=3)
    cfg.resume = True
    resumed = build_runner(cfg)
    resumed.train()
    assert resumed.iter == 3
    assert (tmp_path / 'a' / 'iter_3.pth').is_file()
    path, marker = crafted_checkpoint(tmp_path)
    cfg = tiny_cfg(tmp_path / 'b', max_iters=1)
    cfg.load_from = str(path)
    with pytest.raises(pickle.UnpicklingError):
        build_runner(cfg).train()
    assert not marker.exists()


@pytest.mark.parametrize('how', ['resume', 'load_from', 'test'])
def test_tools_refuse_a_crafted_checkpoint(tmp_path, how):
    """tools/train.py (--resume FILE, load_from) and tools/test.py on the
    quick-start config: the crafted file fails with torch's error and
    writes nothing. (Each a process of its own, started by the fork server
    of tests/fault_runs.py.)"""
    path, marker = crafted_checkpoint(tmp_path)
    config = 'configs/quickstart/unet_tiny_synthetic_ce.py'
    work = ['--work-dir', tmp_path / 'work']
    if how == 'resume':
        args = ['tools/train.py', config, '--resume', path] + work
    elif how == 'load_from':
        args = ['tools/train.py', config] + work + [
            '--cfg-options', f'load_from={path}', 'train_cfg.max_iters=1']
    else:
        args = ['tools/test.py', config, path] + work
    proc = run_python(args, check=False, timeout=300)
    assert proc.returncode != 0
    assert 'Weights only load failed' in proc.stdout
    assert not marker.exists()


def test_atomic_save_never_leaves_a_partial_file(tmp_path):
    target = tmp_path / 'iter_4.pth'
    target.write_bytes(b'old, complete')

    def fails_half_way(tmp):
        with open(tmp, 'wb') as f:
            f.write(b'half')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_local_save(fails_half_way, str(target))
    assert target.read_bytes() == b'old, complete'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['iter_4.pth']
    atomic_local_save(lambda tmp: torch.save({'w': 1}, tmp), str(target))
    assert torch.load(target) == {'w': 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ['iter_4.pth']


def test_runner_type_runner_turns_it_off(tmp_path):
    """``runner_type='Runner'`` gives mmengine's own Runner back."""
    from mmengine.runner import Runner
    cfg = tiny_cfg(tmp_path, max_iters=1)
    cfg.runner_type = 'Runner'
    assert type(build_runner(cfg)) is Runner


def test_gloo_group_destroyed_before_interpreter_exit(tmp_path):
    """What the runner leaves at exit: a DDP wrapper (whose reducer holds
    the group) reachable only through a reference cycle, as the Runner and
    its hooks form. Unless the group is really destructed in the plugin's
    atexit handler, its gloo threads live on into interpreter shutdown,
    where a rank can abort. A handler registered before init_cpu_dist runs
    after the plugin's (atexit is last-in first-out) and lists the threads
    left."""
    from tests.fault_runs import free_port
    script = tmp_path / 'probe.py'
    script.write_text('''
import atexit, os
import torch
import torch.distributed as dist
from mmseg_longtail.engine.cpu_distributed import init_cpu_dist

def report():
    names = [open(f'/proc/self/task/{t}/comm').read().strip()
             for t in os.listdir('/proc/self/task')]
    print('alive at exit:', dist.is_initialized())
    print('gloo threads at exit:', sorted(n for n in names if 'gloo' in n))

atexit.register(report)
init_cpu_dist('pytorch')

class Holder:  # a cycle, like runner <-> hooks
    pass

holder = Holder()
holder.self = holder
holder.model = torch.nn.parallel.DistributedDataParallel(
    torch.nn.Linear(2, 1))
holder.model(torch.ones(1, 2)).sum().backward()
del holder
print('initialised:', dist.is_initialized())
''')
    # a process of its own (started by the fork server of
    # tests/fault_runs.py: it ends through the interpreter's own exit)
    env = dict(RANK='0', WORLD_SIZE='1', LOCAL_RANK='0',
               MASTER_ADDR='127.0.0.1', MASTER_PORT=str(free_port()))
    proc = run_python([script], env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert 'initialised: True' in proc.stdout
    assert 'alive at exit: False' in proc.stdout
    assert 'gloo threads at exit: []' in proc.stdout, proc.stdout


def test_cpu_init_dist_needs_known_launcher():
    from mmseg_longtail.engine.cpu_distributed import init_cpu_dist
    with pytest.raises(ValueError, match="launcher='lsf'"):
        init_cpu_dist('lsf')
