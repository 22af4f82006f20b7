"""benchmark_losses.py on CPU prints its header line and its table, nothing
of the profiler that measures the peak memory; its losses are every loss
the plugin registers; CUDA defaults to two shapes."""
import re

import pytest

from mmseg_longtail.analysis.benchmark_losses import (VARIANTS, all_variants,
                                                      as_shapes, over_target,
                                                      plugin_losses)
from tests.conftest import run_tool


def test_cpu_run_prints_only_its_table():
    # CUDA hidden: the machine without a GPU, where the noise came from
    proc = run_tool(['tools/analysis_tools/benchmark_losses.py', '--shape',
                     '1', '4', '8', '8', '--repeats', '1', '--warmup', '0',
                     '--threads', '1', '--markdown'],
                    env=dict(CUDA_VISIBLE_DEVICES=''), timeout=180)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    for line in lines:
        assert 'gpuGetDeviceCount' not in line and 'ERROR' not in line
        # the profiler's log lines: 'STAGE:2024-01-01 ...', 'USDT:...'
        assert not re.match(r'[A-Z]+:\d{4}-\d\d-\d\d ', line), line
    table = [line for line in lines if line.startswith('|')]
    # header, rule, CE, CE on 30*z and every variant; memory measured
    assert len(table) == 2 + 2 + len(all_variants())
    assert all(row.count('|') == 10 for row in table)
    assert '| - | - |' not in proc.stdout
    # the one line of the tool's own before the table
    header = [line for line in lines if not line.startswith('|')]
    assert len(header) == 1 and header[0].startswith('device: '), lines
    assert 'shape 1x4x8x8' in header[0] and 'wall time' in header[0]


def test_every_registered_loss_is_benchmarked():
    """Losses added to the package are in the table without an edit of the
    benchmark: the hand-picked variants first, then one of every other
    registered loss (from its loss base when one uses it)."""
    variants = all_variants()
    assert variants[:len(VARIANTS)] == VARIANTS
    types = {cfg['type'] for _, cfg, _ in variants}
    assert set(plugin_losses()) <= types
    labels = [label for label, _, _ in variants]
    assert len(labels) == len(set(labels))
    # the region losses come with their base config's arguments
    by_type = {cfg['type']: (label, cfg) for label, cfg, _ in variants}
    label, cfg = by_type['SoftJaccardLoss']
    assert label.endswith('.py)') and cfg.get('classes') == 'present'
    assert 'loss_weight' not in cfg and 'class_counts' not in cfg
    # targets of the issue: 1.15x CE, BLV 1.6x
    for label, cfg, target in variants:
        assert target == (1.6 if cfg['type'] == 'BLVLoss' else 1.15), label


def test_default_shapes_per_device():
    assert as_shapes(None, 'cpu') == [(2, 19, 512, 1024)]
    assert as_shapes(None, 'cuda') == [(2, 19, 512, 1024),
                                       (8, 19, 512, 1024)]
    assert as_shapes([1, 2, 3, 4], 'cuda') == [(1, 2, 3, 4)]
    assert as_shapes([[1, 2, 3, 4], [5, 6, 7, 8]], 'cpu') == [
        (1, 2, 3, 4), (5, 6, 7, 8)]
    with pytest.raises(ValueError, match='N C H W'):
        as_shapes([[1, 2, 3]], 'cpu')


def test_over_target_names_each_loss_once():
    def row(name, ratio, target, extra):
        return [name, '1', ratio, '1', ratio, ratio, target, '1', extra]

    rows = [row('CrossEntropy (mmseg)', '1.00', '-', '+0.00'),
            row('fast', '1.10', '<= 1.15', '+0.00'),
            row('slow', '1.20', '<= 1.15', '+0.00'),
            row('big', '0.90', '<= 1.15', '+1.50'),
            row('both', '2.00', '<= 1.6', '+2.00'),
            row('no memory', '1.00', '<= 1.15', '-')]
    assert over_target(rows) == [
        'slow (1.20x CE, target <= 1.15)',
        'big (peak +1.50 logits above CE, target <= +1)',
        'both (2.00x CE, target <= 1.6; peak +2.00 logits above CE, '
        'target <= +1)']
