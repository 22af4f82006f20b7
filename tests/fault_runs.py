"""Helpers of the fault-tolerance tests: a small training config on the
synthetic data with everything that draws random numbers (dropout, random
flips, a shuffled sampler, evaluations between checkpoints), runs of
tools/train.py in 1 or 2 processes, and a bit-exact comparison of final
checkpoints."""
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, List, Optional

import torch

from tests.conftest import REPO_ROOT

CONFIG = """
_base_ = [{base!r}]
custom_imports = dict(
    imports=['mmseg_longtail', 'tests.test_configs.data.fault_hooks'],
    allow_failed_imports=False)
train_dataloader = dict(
    batch_size=2, num_workers={workers},
    persistent_workers={persistent},
    dataset=dict(length=16))
val_dataloader = dict(dataset=dict(length=4))
test_dataloader = val_dataloader
model = dict(backbone=dict(base_channels=8), decode_head=dict(
    in_channels=8, channels=8, dropout_ratio=0.3))
train_cfg = dict(max_iters={max_iters}, val_interval=2)
randomness = dict(seed=0)
param_scheduler = [dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0,
                        end={max_iters}, by_epoch=False)]
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(interval=3, max_keep_ckpts=1))
custom_hooks = {hooks!r}
{extra}
"""


def write_config(path: Path, hooks: List[dict], max_iters: int,
                 workers: int = 0, extra: str = '') -> Path:
    """A config of the quick-start U-Net (width 8, dropout 0.3) with
    ``hooks`` as its ``custom_hooks`` and ``extra`` config lines."""
    path.write_text(CONFIG.format(
        base=str(REPO_ROOT / 'configs/quickstart/unet_tiny_synthetic_ce.py'),
        workers=workers, persistent=workers > 0, hooks=hooks,
        max_iters=max_iters, extra=extra))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def train_command(config: Path, work: Path, procs: int,
                  resume: bool = False) -> List[str]:
    """tools/train.py in one process, or under torchrun in ``procs``."""
    if procs == 1:
        args = [sys.executable, 'tools/train.py']
    else:
        args = [sys.executable, '-m', 'torch.distributed.run',
                f'--nproc_per_node={procs}', f'--master_port={free_port()}',
                'tools/train.py']
    args += [str(config), '--work-dir', str(work)]
    args += ['--launcher', 'pytorch'] if procs > 1 else []
    return args + (['--resume'] if resume else [])


def train_env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1',
                PYTHONPATH=str(REPO_ROOT))


def train(config: Path, work: Path, procs: int, resume: bool = False,
          expect: Optional[int] = 0) -> subprocess.CompletedProcess:
    """Run to the end; ``expect``: the exit status (None: any non-zero)."""
    proc = subprocess.run(train_command(config, work, procs, resume),
                          cwd=REPO_ROOT, env=train_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=600)
    if expect is None:
        assert proc.returncode != 0, proc.stdout[-3000:]
    else:
        assert proc.returncode == expect, proc.stdout[-6000:]
    return proc


def final_checkpoint(work: Path, iters: int) -> dict:
    return torch.load(work / f'iter_{iters}.pth', map_location='cpu',
                      weights_only=False)


def same_state(a: dict, b: dict) -> bool:
    """Bit-identical weights, buffers (BN statistics) and momenta."""
    sa, sb = a['state_dict'], b['state_dict']
    assert sa.keys() == sb.keys()
    weights = all(torch.equal(sa[k], sb[k]) for k in sa)
    ma, mb = a['optimizer']['state'], b['optimizer']['state']
    assert ma.keys() == mb.keys()
    momenta = all(torch.equal(ma[k]['momentum_buffer'],
                              mb[k]['momentum_buffer']) for k in ma)
    return weights and momenta


def last_checkpoint_name(work: Path) -> str:
    return Path((work / 'last_checkpoint').read_text().strip()).name



def wait_until(condition: Callable[[], Any], proc=None, timeout: float = 300,
               what: str = 'progress', poll: float = 0.1) -> Any:
    """Poll ``condition()`` until it is truthy and return its value; fail
    when ``proc`` (a Popen) ends first, with its output, or after
    ``timeout`` seconds."""
    deadline = time.time() + timeout
    while True:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read()[-3000:] if proc.stdout else ''
            raise AssertionError(f'exited {proc.returncode} before '
                                 f'{what}:\n{out}')
        if time.time() > deadline:
            raise AssertionError(f'no {what} after {timeout} s')
        time.sleep(poll)


def log_matches(path: Path, pattern: str) -> Callable[[], bool]:
    """A condition: the file exists and ``pattern`` is found in it."""
    return lambda: path.is_file() and re.search(pattern,
                                                path.read_text()) is not None
