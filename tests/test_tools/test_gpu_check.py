"""tools/misc/gpu_check.sh on a machine without a GPU (CUDA hidden): it
exits with 2 and one line saying that there is no GPU and why, and runs
nothing else (no log folder appears)."""
import os
import subprocess
import sys

from tests.conftest import REPO_ROOT


def run_check(*args, **env):
    full_env = dict(os.environ, PYTHON=sys.executable, **env)
    return subprocess.run(['bash', 'tools/misc/gpu_check.sh', *args],
                          cwd=REPO_ROOT, env=full_env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=120)


def test_without_gpu_exits_with_one_clear_line(tmp_path):
    proc = run_check(CUDA_VISIBLE_DEVICES='', GPU_CHECK_DIR=str(tmp_path /
                                                                'logs'))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == ''
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith('gpu_check: no GPU: '
                               'torch.cuda.is_available() is False (torch ')
    assert 'CUDA_VISIBLE_DEVICES is empty' in lines[0]
    assert lines[0].endswith('run it on a GPU node')
    assert not (tmp_path / 'logs').exists()


def test_help_and_unknown_option():
    proc = run_check('--help')
    assert proc.returncode == 0 and 'gpu_check.sh' in proc.stdout
    assert '--no-benchmark' in proc.stdout
    proc = run_check('--fast')
    assert proc.returncode == 2
    assert proc.stderr.strip() == ('gpu_check: unknown option --fast (see '
                                   '--help)')
