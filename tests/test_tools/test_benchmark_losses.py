"""benchmark_losses.py on CPU prints its header line and its table, nothing
of the profiler that measures the peak memory."""
import re

from mmseg_longtail.analysis.benchmark_losses import VARIANTS
from tests.conftest import run_tool


def test_cpu_run_prints_only_its_table():
    # CUDA hidden: the machine without a GPU, where the noise came from
    proc = run_tool(['tools/analysis_tools/benchmark_losses.py', '--shape',
                     '1', '4', '8', '8', '--repeats', '1', '--warmup', '0',
                     '--threads', '1', '--markdown'],
                    env=dict(CUDA_VISIBLE_DEVICES=''), timeout=120)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    for line in lines:
        assert 'gpuGetDeviceCount' not in line and 'ERROR' not in line
        # the profiler's log lines: 'STAGE:2024-01-01 ...', 'USDT:...'
        assert not re.match(r'[A-Z]+:\d{4}-\d\d-\d\d ', line), line
    table = [line for line in lines if line.startswith('|')]
    # header, rule, CE, CE on 30*z and every variant; memory measured
    assert len(table) == 2 + 2 + len(VARIANTS)
    assert all(row.count('|') == 10 for row in table)
    assert '| - | - |' not in proc.stdout
    # the one line of the tool's own before the table
    header = [line for line in lines if not line.startswith('|')]
    assert len(header) == 1 and header[0].startswith('device: '), lines
