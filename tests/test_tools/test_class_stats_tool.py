import json

import numpy as np
import pytest

from mmseg_longtail.datasets import SyntheticLongTailDataset
from mmseg_longtail.utils import compute_class_stats, load_class_counts
from tests.conftest import CAMVID_TRAIN_PIXELS, run_tool

TOOL = 'tools/analysis_tools/class_stats.py'


def test_camvid_folder(camvid_root, tmp_path):
    out, plot = tmp_path / 'camvid.json', tmp_path / 'camvid.png'
    log = run_tool([
        TOOL, '--ann-dir', camvid_root / 'ann_dir' / 'train', '--num-classes',
        '11', '--ignore-index', '11', '--out', out, '--plot', plot,
        '--workers', '2', '--classes', 'Sky', 'Building', 'Pole', 'Road',
        'Pavement', 'Tree', 'SignSymbol', 'Fence', 'Car', 'Pedestrian',
        'Bicyclist'
    ]).stdout
    stats = json.loads(out.read_text())
    assert stats['pixel_counts'] == CAMVID_TRAIN_PIXELS
    assert stats['ignore_index'] == 11
    assert stats['num_images'] == 367
    assert stats['classes'][10] == 'Bicyclist'
    # every image has road and sky pixels; bicyclists are rare
    assert stats['image_counts'][3] == 367
    assert 0 < stats['image_counts'][10] < 367
    assert plot.stat().st_size > 10_000
    assert 'Bicyclist' in log and '367 images' in log
    np.testing.assert_array_equal(
        load_class_counts(str(out), 11, kind='image'), stats['image_counts'])


def test_config_source_matches_dataset(tmp_path):
    out = tmp_path / 'synthetic.json'
    run_tool([
        TOOL, 'configs/quickstart/unet_tiny_synthetic_ce.py', '--out', out,
        '--workers', '2', '--cfg-options', 'train_dataloader.dataset.length=20'
    ])
    stats = json.loads(out.read_text())
    ds = SyntheticLongTailDataset(length=20, seed=0)
    direct = compute_class_stats(ds.get_gt_seg_map, 5, num_labels=20,
                                 progress=False)
    assert stats['pixel_counts'] == direct['pixel_counts']
    assert stats['image_counts'] == direct['image_counts']
    assert stats['classes'] == [f'class{i}' for i in range(5)]
    assert stats['ignore_index'] == 255
    assert sum(stats['pixel_counts']) == 20 * 60 * 64  # 4 ignored rows


@pytest.mark.parametrize('args,message', [
    (['--out', 'x.json'], 'give either CONFIG or --ann-dir'),
    (['--ann-dir', '.', '--out', 'x.json'], '--ann-dir needs --num-classes'),
])
def test_usage_errors(args, message):
    proc = run_tool([TOOL] + args, check=False)
    assert proc.returncode != 0 and message in proc.stdout


def test_out_of_range_label_names_file(tmp_path):
    from PIL import Image
    (tmp_path / 'ann').mkdir()
    Image.fromarray(np.full((4, 4), 3, np.uint8)).save(tmp_path / 'ann' /
                                                       'a.png')
    proc = run_tool([
        TOOL, '--ann-dir', tmp_path / 'ann', '--num-classes', '3', '--out',
        tmp_path / 'o.json'
    ], check=False)
    assert proc.returncode != 0
    assert 'a.png' in proc.stdout and 'outside 0..2' in proc.stdout


def test_write_class_stats_function(tmp_path):
    """The package function behind the CONFIG form, as experiment code
    calls it: same counts as the data set, JSON and plot written."""
    from mmseg_longtail.analysis.class_stats import write_class_stats
    out, plot = tmp_path / 'stats' / 's.json', tmp_path / 's.png'
    stats = write_class_stats(
        'configs/quickstart/unet_tiny_synthetic_ce.py', str(out),
        plot=str(plot),
        cfg_options={'train_dataloader.dataset.length': 8})
    ds = SyntheticLongTailDataset(length=8, seed=0)
    direct = compute_class_stats(ds.get_gt_seg_map, 5, num_labels=8,
                                 progress=False)
    assert json.loads(out.read_text()) == stats
    assert stats['pixel_counts'] == direct['pixel_counts']
    assert stats['num_images'] == 8
    assert plot.stat().st_size > 0
