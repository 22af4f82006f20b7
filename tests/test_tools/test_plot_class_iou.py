"""plot_class_iou on metric JSON files written by LongTailIoUMetric."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

import mmseg_longtail  # noqa: F401
from mmseg.registry import METRICS
from mmseg_longtail.analysis.plot_class_iou import (class_points, plot,
                                                    plot_runs, run_name)
from tests.conftest import run_tool

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
    ids, share, values = class_points(rec_a, np.array(COUNTS, float))
    # rarest first; class 1 (count 0 -> 1, undefined IoU) dropped
    assert ids.tolist() == [2, 0, 3]
    np.testing.assert_allclose(share, np.array([20, 500, 3000]) / 3521)
    np.testing.assert_allclose(values,
                               [rec_a['per_class']['IoU'][i] for i in ids])
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
