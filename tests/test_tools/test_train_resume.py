"""End to end: tools/train.py on the quick-start config, interrupted and
resumed, and 2-process CPU training with torchrun (gloo). The processes are
started by the fork server of tests/fault_runs.py."""
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import torch

from tests.fault_runs import popen, prestart
from tests.fault_runs import run_python as run_tool

CONFIG = 'configs/quickstart/unet_tiny_synthetic_ce.py'

# the fork server of the runs imports while pytest collects the tests
prestart()
SHORT = [
    'train_dataloader.dataset.length=32', 'val_dataloader.dataset.length=8',
    'test_dataloader.dataset.length=8', 'default_hooks.logger.interval=1'
]


def _last_iter(work_dir: Path) -> int:
    ckpt = (work_dir / 'last_checkpoint').read_text().strip()
    return int(re.search(r'iter_(\d+)\.pth', ckpt).group(1))


def test_train_interrupt_resume(tmp_path):
    work = tmp_path / 'run'
    opts = SHORT + [
        'train_cfg.max_iters=400', 'train_cfg.val_interval=1000',
        'default_hooks.checkpoint.interval=5',
        'default_hooks.checkpoint.max_keep_ckpts=3'
    ]
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    proc = popen(
        ['tools/train.py', CONFIG, '--work-dir', str(work), '--cfg-options'] +
        opts, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    try:
        deadline = time.time() + 240
        while not (work / 'iter_10.pth').exists():
            assert proc.poll() is None, 'training exited before iter 10'
            assert time.time() < deadline, 'no checkpoint after 240 s'
            time.sleep(0.2)
        time.sleep(0.5)  # let the checkpoint write finish
    finally:
        # A hard interrupt, as a pre-empted job would see.
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    saved = _last_iter(work)
    assert 10 <= saved < 400
    ckpt = torch.load(work / f'iter_{saved}.pth', map_location='cpu',
                      weights_only=False)
    assert ckpt['meta']['iter'] == saved

    final = saved + 5
    out = run_tool([
        'tools/train.py', CONFIG, '--work-dir', work, '--resume',
        '--cfg-options'
    ] + SHORT + [
        f'train_cfg.max_iters={final}', f'train_cfg.val_interval={final}',
        'default_hooks.checkpoint.interval=5'
    ]).stdout
    assert f'resumed epoch: 0, iter: {saved}' in out
    # Training continues at saved + 1, not at 1.
    assert re.search(rf'Iter\(train\) \[\s*{saved + 1}/{final}\]', out)
    assert not re.search(rf'Iter\(train\) \[\s*1/{final}\]', out)
    assert _last_iter(work) == final
    assert re.search(r'mIoU: \d', out)

    # tools/test.py evaluates the resumed checkpoint.
    out = run_tool([
        'tools/test.py', CONFIG, work / f'iter_{final}.pth', '--work-dir',
        tmp_path / 'test', '--cfg-options'
    ] + SHORT).stdout
    assert re.search(r'mIoU: \d', out)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_torchrun_two_process_cpu_syncbn(tmp_path):
    """torchrun + --launcher pytorch on CPU: gloo, and mmseg's usual SyncBN
    (which needs CUDA) turned into BN with a warning. The loss-curve match
    against one process is tested in test_dist_train.py."""
    work = tmp_path / 'ddp'
    out = run_tool([
        '-m', 'torch.distributed.run', '--nproc_per_node=2',
        f'--master_port={_free_port()}', 'tools/train.py', CONFIG,
        '--launcher', 'pytorch', '--work-dir', work, '--cfg-options'
    ] + SHORT + [
        'train_cfg.max_iters=6', 'train_cfg.val_interval=6',
        'default_hooks.checkpoint.interval=6',
        'model.backbone.norm_cfg.type=SyncBN',
        'model.decode_head.norm_cfg.type=SyncBN'
    ]).stdout
    assert 'SyncBN layers converted to BN' in out
    assert 'Distributed launcher: pytorch' in out
    assert 'Distributed training: True' in out
    assert re.search(r'GPU number: 2|world_size: 2|Iter\(train\) \[6/6\]',
                     out)
    assert (work / 'iter_6.pth').exists()
    assert re.search(r'mIoU: \d', out)
