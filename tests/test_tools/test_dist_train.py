"""tools/dist_train.sh / dist_test.sh on CPU: two gloo processes under
torchrun train exactly like one process on the same global batch. The
Python processes (the one-process run, torchrun and its workers) are started
by the fork server of tests/fault_runs.py (``fork_env``: the scripts'
PYTHON and torchrun's PYTHON_EXEC)."""
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO_ROOT
from tests.fault_runs import finish, fork_env, popen, prestart, tool_env

CONFIG = 'tests/test_configs/data/tiny_gn_synthetic.py'

# the fork server of the runs imports while pytest collects the tests
prestart()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _env() -> dict:
    # the loss-recording hook is imported as tests.test_configs.data...
    env = dict(PYTHONPATH=str(REPO_ROOT), PYTHON=sys.executable,
               OMP_NUM_THREADS='1', PORT=str(_free_port()))
    return dict(env, **fork_env())  # PYTHON: the fork server's proxy


def run_script(args, env) -> str:
    full_env = dict(os.environ, PYTHONUNBUFFERED='1', **env)
    proc = subprocess.run(['bash'] + [str(a) for a in args], cwd=REPO_ROOT,
                          env=full_env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-6000:]
    return proc.stdout


def read_losses(work: Path, rank: int) -> list:
    path = work / f'losses_rank{rank}.jsonl'
    assert path.is_file(), f'rank {rank} recorded no loss'
    return [json.loads(line) for line in path.read_text().splitlines()]


def final_miou(log: str) -> float:
    return float(re.findall(r'mIoU: ([\d.]+)', log)[-1])


def test_dist_train_two_cpu_processes_match_one(tmp_path):
    env = _env()
    one, two = tmp_path / 'one', tmp_path / 'two'
    # reference: one process, batch 4 (trains beside the two processes)
    ref = popen(['tools/train.py', CONFIG, '--work-dir', one],
                env=tool_env(env))
    try:
        # two gloo processes, batch 2 each: the same global batch of 4
        log = run_script(['tools/dist_train.sh', CONFIG, 2, '--work-dir',
                          two, '--cfg-options',
                          'train_dataloader.batch_size=2'], env)
    finally:
        ref_log = finish(ref).stdout

    ref = read_losses(one, 0)
    rank0, rank1 = read_losses(two, 0), read_losses(two, 1)
    assert [r['iter'] for r in ref] == [1, 2, 3, 4]
    assert {r['world_size'] for r in rank0 + rank1} == {2}
    assert {r['world_size'] for r in ref} == {1}
    for r, a, b in zip(ref, rank0, rank1):
        assert a['iter'] == b['iter'] == r['iter']
        assert a['batch'] == b['batch'] == 2
        # the ranks split the reference batch between them
        assert not set(a['img_path']) & set(b['img_path'])
        assert sorted(a['img_path'] + b['img_path']) == sorted(r['img_path'])
        # DDP averages the ranks' gradients = the gradient of the mean loss
        mean = (a['loss'] + b['loss']) / 2
        assert mean == pytest.approx(r['loss'], rel=1e-5)
    # training moved the loss, so the comparison is not trivially at init
    assert ref[-1]['loss'] < ref[0]['loss']

    assert (two / 'iter_4.pth').is_file()
    ckpt1 = torch.load(one / 'iter_4.pth', map_location='cpu',
                       weights_only=False)['state_dict']
    ckpt2 = torch.load(two / 'iter_4.pth', map_location='cpu',
                       weights_only=False)['state_dict']
    assert sorted(ckpt1) == sorted(ckpt2)
    for k in ckpt1:
        torch.testing.assert_close(ckpt2[k], ckpt1[k], rtol=1e-4, atol=1e-5)

    # distributed testing of that checkpoint gives the validation score
    test_log = run_script(['tools/dist_test.sh', CONFIG, two / 'iter_4.pth',
                           2, '--work-dir', tmp_path / 'test'],
                          dict(env, PORT=str(_free_port())))
    assert final_miou(test_log) == pytest.approx(final_miou(log), abs=0.01)
    assert final_miou(log) == pytest.approx(final_miou(ref_log), abs=0.01)
