"""Real training on one GPU through tools/dist_train.sh (torchrun, NCCL,
SyncBN kept): 50 iterations of the UNet base (configs/_base_/models/unet.py,
CE) and of DeepLabV3+ (configs/_base_/models/deeplabv3plus.py) with PAT and
with BLV, on the built-in synthetic data at 64x64.

Resume: a run killed with SIGKILL after the checkpoint of iteration 25 and
resumed with ``--resume`` ends with the weights of the uninterrupted run.
What that needs on CUDA, all set by the runtime base
(configs/_base_/default_runtime.py): ``env_cfg.cudnn_benchmark=False`` (the
autotuner may pick other algorithms in the resumed process) and
ExactResumeHook, which reseeds every generator per batch and turns on
cuDNN's deterministic algorithms and torch's deterministic implementations
(``use_deterministic_algorithms(True, warn_only=True)``) for the run. Kernels
without a deterministic version stay nondeterministic: bilinear
interpolation's backward (UNet's InterpConv, mmseg's resize of the logits,
DeepLabV3+'s decoder) accumulates with atomics, so two uninterrupted runs
of those models may already differ in the last bits. Hence:

* ``unet_deconv`` (the UNet base with transposed-convolution upsampling, no
  auxiliary head: every kernel deterministic) must resume bit for bit;
* the others resume bit for bit when two uninterrupted runs agree bit for
  bit on this GPU, and otherwise end within 10x the distance between those
  two runs (a resume that lost state, e.g. a generator, differs by orders
  of magnitude more).

Preemption: SIGUSR1 to the training process makes it finish the
iteration, write that iteration's checkpoint and exit with 75 (torchrun
reports its worker's 75); resumed, it ends as the uninterrupted run.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.cuda

ITERS = 50
CKPT = 25  # checkpoint interval: the kill at 30 resumes from 25
COUNTS = [4000, 2000, 800, 200, 50]
HOOKS = [
    dict(type='NonFiniteGuardHook', action='stop'),
    dict(type='ExactResumeHook'),
    dict(type='PreemptionHook'),
    dict(type='MetricWorkDirHook'),
    dict(type='TrainProbeHook'),
]
BASES = REPO_ROOT / 'configs' / '_base_'

CONFIG = """
_base_ = {bases!r}
custom_imports = dict(
    imports=['mmseg_longtail', 'tests.test_configs.data.fault_hooks',
             'tests.test_cuda.train_probe'],
    allow_failed_imports=False)
train_dataloader = dict(batch_size=4, num_workers=2, persistent_workers=True,
                        dataset=dict(length=64))
val_dataloader = dict(batch_size=4, dataset=dict(length=8))
test_dataloader = val_dataloader
model = dict(
    data_preprocessor=dict(size=(64, 64)),
    decode_head=dict(num_classes=5{loss}),
    {extra_model})
train_cfg = dict(max_iters={iters}, val_interval={ckpt})
param_scheduler = [dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0,
                        end={iters}, by_epoch=False)]
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval={ckpt}, max_keep_ckpts=3, save_last=True),
    visualization=dict(type='SegVisualizationHook', draw=False))
randomness = dict(seed=0)
custom_hooks = {hooks!r}
"""

# name -> (model base, loss base or None, decode-head loss, more of model,
#          must resume bit for bit)
MODELS = {
    'unet': ('unet.py', None, '', 'auxiliary_head=dict(num_classes=5)',
             False),
    'unet_deconv': (
        'unet.py', None, '',
        "backbone=dict(upsample_cfg=dict(type='DeconvModule', "
        "kernel_size=4, scale_factor=2)), auxiliary_head=None", True),
    'deeplabv3plus_pat': (
        'deeplabv3plus.py', 'pat.py',
        ', loss_decode=dict(_base_.loss_decode, _delete_=True)',
        'auxiliary_head=dict(num_classes=5)', False),
    'deeplabv3plus_blv': (
        'deeplabv3plus.py', 'blv.py',
        f', loss_decode=dict(_base_.loss_decode, _delete_=True, '
        f'class_counts={COUNTS})',
        'auxiliary_head=dict(num_classes=5)', False),
}


def write_config(path: Path, name: str, hooks=()) -> Path:
    model, loss_base, loss, extra, _ = MODELS[name]
    bases = [BASES / 'models' / model, BASES / 'datasets' / 'synthetic.py']
    if loss_base:
        bases.append(BASES / 'losses' / loss_base)
    bases += [BASES / 'default_runtime.py',
              BASES / 'schedules' / 'schedule_30k.py']
    path.write_text(CONFIG.format(
        bases=[str(b) for b in bases], loss=loss, extra_model=extra,
        iters=ITERS, ckpt=CKPT, hooks=HOOKS + list(hooks)))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def dist_train(config: Path, work: Path, resume: bool = False):
    """tools/dist_train.sh CONFIG 1 (torchrun, one GPU) as a Popen."""
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(free_port()),
               PYTHONUNBUFFERED='1', OMP_NUM_THREADS='2',
               CUDA_VISIBLE_DEVICES=os.environ.get('CUDA_VISIBLE_DEVICES',
                                                   '0'))
    args = ['bash', 'tools/dist_train.sh', str(config), '1', '--work-dir',
            str(work)] + (['--resume'] if resume else [])
    return subprocess.Popen(args, cwd=REPO_ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(proc, expect_ok: bool = True, timeout: int = 900) -> str:
    out, _ = proc.communicate(timeout=timeout)
    if expect_ok:
        assert proc.returncode == 0, out[-6000:]
    return out


def final_state(work: Path) -> dict:
    ckpt = torch.load(work / f'iter_{ITERS}.pth', map_location='cpu',
                      weights_only=False)
    state = {f'w.{k}': v for k, v in ckpt['state_dict'].items()}
    for k, v in ckpt['optimizer']['state'].items():
        state[f'm.{k}'] = v['momentum_buffer']
    return state


def distance(a: dict, b: dict) -> float:
    """Largest absolute difference of any weight, buffer or momentum."""
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item()
               if a[k].is_floating_point() else float(not torch.equal(
                   a[k], b[k])) for k in a)


def check_probe(work: Path, log: str) -> None:
    """What the run trained with: one NCCL process on the GPU, SyncBN
    kept, cuDNN's autotuner off and the deterministic algorithms on."""
    probe = json.loads((work / 'probe_rank0.json').read_text())
    assert probe['backend'] == 'nccl' and probe['world_size'] == 1, probe
    assert probe['device'].startswith('cuda'), probe
    assert probe['syncbn_layers'] > 0, probe  # SyncBN kept, not reverted
    assert 'SyncBN layers converted to BN' not in log
    assert probe['wrapper'] == 'MMDistributedDataParallel', probe
    assert not probe['cudnn_benchmark'] and probe['cudnn_deterministic']
    assert probe['deterministic_algorithms'], probe


def assert_resumed_as_uninterrupted(tmp_path: Path, name: str, ref: dict,
                                    resumed: dict) -> None:
    exact = MODELS[name][4]
    d_resume = distance(ref, resumed)
    if d_resume == 0:
        return
    assert not exact, (f'{name}: every kernel is deterministic, yet the '
                       f'resumed run differs by {d_resume:g}')
    # a second uninterrupted run: the GPU's own run-to-run spread
    again = tmp_path / 'again'
    finish(dist_train(write_config(tmp_path / 'again.py', name), again))
    d_device = distance(ref, final_state(again))
    assert d_device > 0, (f'{name}: two uninterrupted runs agree bit for '
                          f'bit, the resumed one differs by {d_resume:g}')
    assert d_resume <= 10 * d_device, (d_resume, d_device)


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory):
    """name -> final state of the uninterrupted 50-iteration run (each
    model trained once for the module)."""
    states = {}

    def get(name: str) -> dict:
        if name not in states:
            root = tmp_path_factory.mktemp(f'ref_{name}')
            log = finish(dist_train(write_config(root / 'ref.py', name),
                                    root / 'work'))
            assert f'Iter(train) [{ITERS}/{ITERS}]' in log, log[-3000:]
            check_probe(root / 'work', log)
            states[name] = final_state(root / 'work')
        return states[name]

    return get


@pytest.mark.parametrize('name', sorted(MODELS))
def test_trains_50_iterations(name, uninterrupted):
    state = uninterrupted(name)
    assert all(torch.isfinite(v).all() for v in state.values()
               if v.is_floating_point())


@pytest.mark.parametrize('name', sorted(MODELS))
def test_killed_and_resumed_ends_as_uninterrupted(tmp_path, name,
                                                  uninterrupted):
    ref = uninterrupted(name)
    work = tmp_path / 'run'
    kill = [dict(type='KillAtIterHook', at=CKPT + 5)]
    out = finish(dist_train(write_config(tmp_path / 'killed.py', name,
                                         kill), work), expect_ok=False)
    assert not (work / f'iter_{ITERS}.pth').exists(), out[-3000:]
    last = Path((work / 'last_checkpoint').read_text().strip()).name
    assert last == f'iter_{CKPT}.pth', out[-3000:]
    out = finish(dist_train(write_config(tmp_path / 'resumed.py', name),
                            work, resume=True))
    assert f'resumed epoch: 0, iter: {CKPT}' in out, out[-3000:]
    assert_resumed_as_uninterrupted(tmp_path, name, ref, final_state(work))


def test_preemption_checkpoints_and_exits_75(tmp_path, uninterrupted):
    """SIGUSR1 to the training process (as SLURM's warning signal): the
    iteration finishes, its checkpoint is written, the worker exits with
    75 (torchrun reports it), and the resumed run ends as the
    uninterrupted one."""
    name = 'unet_deconv'
    ref = uninterrupted(name)
    work = tmp_path / 'run'
    slow = [dict(type='ProgressHook', delay=0.3)]
    proc = dist_train(write_config(tmp_path / 'slow.py', name, slow), work)
    progress = work / 'progress_rank0.txt'
    deadline = time.time() + 600
    try:
        while True:
            assert proc.poll() is None, proc.stdout.read()[-3000:]
            assert time.time() < deadline, 'no iteration 5 in 600 s'
            if progress.is_file():
                text = progress.read_text().split()
                if len(text) == 2 and int(text[1]) >= 5:
                    pid = int(text[0])
                    break
            time.sleep(0.1)
        os.kill(pid, signal.SIGUSR1)
        out = finish(proc, expect_ok=False, timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    # torchrun exits 1 and names its worker's exit status
    assert proc.returncode != 0 and 'exitcode  : 75' in out, out[-3000:]
    stopped = int(progress.read_text().split()[1])
    assert 5 <= stopped < ITERS
    assert (f'PreemptionHook: SIGUSR1 received; stopped after iteration '
            f'{stopped} with checkpoint') in out
    last = Path((work / 'last_checkpoint').read_text().strip()).name
    assert last == f'iter_{stopped}.pth'
    out = finish(dist_train(write_config(tmp_path / 'resumed.py', name),
                            work, resume=True))
    assert f'resumed epoch: 0, iter: {stopped}' in out, out[-3000:]
    assert_resumed_as_uninterrupted(tmp_path, name, ref, final_state(work))
