"""plot_class_iou on metric JSON files written by LongTailIoUMetric."""
import itertools
import json
import re

import numpy as np
import pytest
import torch
from PIL import Image

import mmseg_longtail  # noqa: F401
from mmseg.registry import METRICS
from mmseg_longtail.analysis.plot_class_iou import (draw, plot, plot_runs,
                                                    run_name)
from tests.conftest import run_tool
from tools.analysis_tools.plot_class_iou import main

CLASSES = ('a', 'b', 'c', 'd')
COUNTS = [500, 0, 20, 3000]


def write_run(work_dir, seed, counts=COUNTS):
    """Evaluate random predictions; class 1 never appears (NaN IoU)."""
    rng = np.random.default_rng(seed)
    label = torch.from_numpy(rng.choice([0, 2, 3], (1, 16, 16)))
    pred = torch.from_numpy(rng.choice([0, 2, 3], (1, 16, 16)))
    metric = METRICS.build(dict(
        type='LongTailIoUMetric', class_counts=counts,
        json_dir=str(work_dir / 'longtail_metrics')))
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, [dict(pred_sem_seg=dict(data=pred),
                             gt_sem_seg=dict(data=label))])
    metric.evaluate(1)
    return json.loads(
        (work_dir / 'longtail_metrics' / 'latest.json').read_text())


def test_points_and_png(tmp_path):
    rec_a = write_run(tmp_path / 'run_ce', 0)
    rec_b = write_run(tmp_path / 'run_pat', 1)
    fig = draw([rec_a], ['CE'], np.array(COUNTS, float))
    values, shares = fig.axes
    # rarest first; class 1 has neither training nor evaluated pixels
    assert [t.get_text() for t in values.get_xticklabels()] == [
        'b (no pixels)', 'c', 'a', 'd']
    (line, ) = values.get_lines()
    np.testing.assert_allclose(
        line.get_ydata(),
        [np.nan] + [rec_a['per_class']['IoU'][i] for i in (2, 0, 3)])
    # no share for class 1: the others' of the real total
    (share, ) = shares.get_lines()
    assert share.get_xdata().tolist() == [1, 2, 3]
    np.testing.assert_allclose(share.get_ydata(),
                               np.array([20, 500, 3000]) / 3520)
    out = tmp_path / 'plots' / 'iou.png'
    # through the command line, as the docs run it
    log = run_tool(['tools/analysis_tools/plot_class_iou.py',
                    tmp_path / 'run_ce',
                    tmp_path / 'run_pat' / 'longtail_metrics', '--out',
                    out]).stdout
    assert f'wrote {out}' in log
    with Image.open(out) as img:
        assert img.format == 'PNG' and img.size[0] > 300
    assert run_name(str(tmp_path / 'run_ce/longtail_metrics/x.json'),
                    rec_a) == 'run_ce'
    assert rec_b['per_class']['IoU'] != rec_a['per_class']['IoU']


def test_stats_and_errors(tmp_path):
    write_run(tmp_path / 'r1', 0)
    stats = tmp_path / 'stats.json'
    stats.write_text(json.dumps(dict(
        classes=list(CLASSES), pixel_counts=[1, 2, 3, 4],
        image_counts=[4, 3, 2, 1])))
    plot_runs([str(tmp_path / 'r1')], str(tmp_path / 'p.png'), names=['CE'],
              stats=str(stats), count_type='image')
    assert (tmp_path / 'p.png').stat().st_size > 0
    with pytest.raises(ValueError, match='--names'):
        plot_runs([str(tmp_path / 'r1')], names=['a', 'b'])
    with pytest.raises(FileNotFoundError, match='latest.json'):
        plot_runs([str(tmp_path / 'missing')])
    with pytest.raises(ValueError, match=r"--stats \(.*stats\.json', field "
                       r'pixel_counts\) has 5 counts but num_classes is 4'):
        stats.write_text(json.dumps(dict(pixel_counts=[1] * 5,
                                         image_counts=[1] * 5)))
        plot_runs([str(tmp_path / 'r1')], stats=str(stats))
    with pytest.raises(ValueError, match='image counts, not pixel|pixel '
                       'counts, not image'):
        plot_runs([str(tmp_path / 'r1')], count_type='image')
    other = tmp_path / 'r2' / 'longtail_metrics'
    other.mkdir(parents=True)
    record = json.loads((tmp_path / 'r1/longtail_metrics/latest.json')
                        .read_text())
    record['classes'] = ['x'] * 4
    (other / 'latest.json').write_text(json.dumps(record))
    with pytest.raises(ValueError, match='differ'):
        plot_runs([str(tmp_path / 'r1'), str(tmp_path / 'r2')])


def test_plot_from_records(tmp_path):
    """``plot`` as the results page calls it: records built in memory,
    positional (records, names, counts, metric, out, title)."""
    rec = write_run(tmp_path / 'run', 0)
    records = [dict(classes=rec['classes'], per_class=dict(IoU=values),
                    summary=dict(mIoU=50.0))
               for values in (rec['per_class']['IoU'],
                              [None, None, 10.0, 90.0])]
    out = str(tmp_path / 'page' / 'iou.png')
    assert plot(records, ['CE', 'PAT'], np.array(COUNTS, float), 'IoU', out,
                'a title') == out
    with Image.open(out) as img:
        assert img.format == 'PNG' and img.size[0] > 300


def test_refuses_to_replace_the_output_unless_overwrite(tmp_path):
    write_run(tmp_path / 'run', 0)
    out = tmp_path / 'class_iou.png'
    out.write_bytes(b'an earlier plot')
    with pytest.raises(FileExistsError,
                       match=re.escape(str(out)) + '.*--overwrite'):
        main([str(tmp_path / 'run'), '--out', str(out)])
    assert out.read_bytes() == b'an earlier plot'
    assert main([str(tmp_path / 'run'), '--out', str(out),
                 '--overwrite']) == str(out)
    with Image.open(out) as img:
        assert img.format == 'PNG'


def log_axes(fig):
    return [(ax, axis) for ax in fig.axes for axis in ('x', 'y')
            if getattr(ax, f'get_{axis}scale')() == 'log']


def test_class_without_pixels_stays_off_the_log_axis(tmp_path):
    """Class 1 has no training pixels: the share axis spans the other
    classes' shares (>= 6.6e-3), not a stand-in count of 1 (6.6e-7)."""
    counts = np.array([1_000_000, 0, 10_000, 500_000], float)
    records = [dict(classes=list(CLASSES),
                    per_class=dict(IoU=[80.0, 0.0, 20.0, 60.0]))]
    fig = draw(records, ['CE'], counts)
    smallest = 10_000 / counts.sum()
    (ax, axis), = log_axes(fig)
    low, high = getattr(ax, f'get_{axis}lim')()
    assert smallest / 10 < low < smallest < high
    for line in ax.get_lines():
        data = getattr(line, f'get_{axis}data')()
        assert np.min(data) >= smallest
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels[0] == 'b (no training pixels)'


def test_class_labels_do_not_overlap():
    """20 classes, several with nearly the same share, long names."""
    classes = [f'{name}_{i:02d}' for i, name in zip(
        range(20), itertools.cycle(['traffic sign', 'pole', 'bicyclist']))]
    counts = np.r_[[1000.0] * 6, np.geomspace(10, 1e7, 14)]
    records = [dict(classes=classes,
                    per_class=dict(IoU=np.linspace(5, 95, 20).tolist()))]
    fig = draw(records, ['CE'], counts)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    labels = [t for t in fig.axes[0].get_xticklabels() if t.get_text()]
    assert sorted(t.get_text() for t in labels) == sorted(classes)
    boxes = [t.get_window_extent(renderer) for t in labels]
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b)
    # on the figure, not cut off at its edge
    assert all(fig.bbox.contains(b.x0, b.y0) and fig.bbox.contains(
        b.x1, b.y1) for b in boxes)
