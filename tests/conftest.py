"""Shared test fixtures: repository paths, the shared CamVid data, tool
runner."""
import os
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / 'shared'
CAMVID_ROOT = SHARED / 'data' / 'camvid'
CAMVID_TRAIN_PIXELS = [
    10682767, 14750079, 623349, 20076880, 2845085, 6166762, 743859, 714595,
    3719877, 405385, 184967
]


def slurm_answers() -> bool:
    """Whether a SLURM controller answers here (``sinfo`` succeeds)."""
    try:
        return subprocess.run(['sinfo', '-h'], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL,
                              timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def cuda_available() -> bool:
    """Whether torch sees a CUDA device here."""
    try:
        import torch
        return torch.cuda.is_available()
    except Exception:  # no torch, or a broken driver: no CUDA
        return False


# marker -> (whether its tests can run here, why they are deselected if not)
NEEDS = {
    'slurm': (slurm_answers, 'no SLURM controller answers (sinfo)'),
    'cuda': (cuda_available, 'no CUDA device (torch.cuda.is_available() '
             'is False); tools/misc/gpu_check.sh runs them on a GPU node'),
}
_DESELECTED = []


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'slurm: needs a SLURM controller that answers (sinfo); '
        'deselected where none does')
    config.addinivalue_line(
        'markers', 'cuda: needs a CUDA device (torch.cuda.is_available()); '
        'deselected where there is none')


def pytest_collection_modifyitems(config, items):
    """Deselect (not skip) the SLURM tests where no controller answers and
    the CUDA tests where there is no GPU, so that a run without them still
    reports 0 skipped; the reason is printed after the collection."""
    for marker, (available, reason) in NEEDS.items():
        needing = [item for item in items if item.get_closest_marker(marker)]
        if not needing or available():
            continue
        config.hook.pytest_deselected(items=needing)
        items[:] = [item for item in items
                    if not item.get_closest_marker(marker)]
        _DESELECTED.append(f'deselected {len(needing)} {marker} test(s): '
                           f'{reason}')


def pytest_report_collectionfinish(config, start_path, items):
    return list(_DESELECTED)


@pytest.fixture(scope='session')
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope='session')
def camvid_root() -> Path:
    """The real CamVid copy beside the checkout; skips when it is absent."""
    if not (CAMVID_ROOT / 'ann_dir' / 'train').is_dir():
        pytest.skip(f'CamVid not found at {CAMVID_ROOT} '
                    '(../shared/data/camvid)')
    return CAMVID_ROOT


def run_tool(args: List[str], cwd: Optional[Path] = None, timeout: int = 600,
             env: Optional[dict] = None, check: bool = True
             ) -> subprocess.CompletedProcess:
    """Run ``python <args>`` from the repo root, output captured.

    On failure the tool's output is shown, so a failing test says why.
    """
    full_env = dict(os.environ)
    full_env.setdefault('OMP_NUM_THREADS', '1')
    full_env['PYTHONUNBUFFERED'] = '1'
    if env:
        full_env.update(env)
    proc = subprocess.run([sys.executable] + [str(a) for a in args],
                          cwd=str(cwd or REPO_ROOT), env=full_env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{" ".join(map(str, args))} exited '
                             f'{proc.returncode}:\n{proc.stdout[-6000:]}')
    return proc


@pytest.fixture(scope='session')
def tool():
    return run_tool


@pytest.fixture(scope='session', autouse=True)
def checkout_stays_clean():
    """The suite writes only to temporary folders: no work_dirs/ or data/
    may appear in the checkout while it runs."""
    watched = [REPO_ROOT / 'work_dirs', REPO_ROOT / 'data']
    before = {p for p in watched if p.exists()}
    yield
    appeared = [str(p) for p in watched if p.exists() and p not in before]
    assert not appeared, f'tests wrote into the checkout: {appeared}'
