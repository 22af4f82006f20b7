import json
import re

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
    check_printed_frequencies_and_gini(log, stats, camvid_root)


def independent_counts(ann_dir, num_classes):
    """Pixel and image counts of classes 0..K-1 (so not the ignored id) by
    a plain loop over the label files."""
    from PIL import Image
    pixels, images = np.zeros(num_classes), np.zeros(num_classes)
    files = sorted(ann_dir.glob('*.png'))
    for path in files:
        label = np.asarray(Image.open(path)).ravel()
        for c in range(num_classes):
            n = np.count_nonzero(label == c)
            pixels[c] += n
            images[c] += n > 0
    return pixels, images, len(files)


def gini_pairs(x):
    """Mean absolute difference over all ordered pairs / (2 * mean)."""
    x = np.asarray(x, dtype=float)
    return np.abs(x[:, None] - x[None, :]).mean() / (2 * x.mean())


def check_printed_frequencies_and_gini(log, stats, camvid_root):
    """The printed image-frequency column and both Gini coefficients, and
    the file's, against an independent computation on the CamVid training
    labels."""
    pixels, images, n = independent_counts(
        camvid_root / 'ann_dir' / 'train', 11)
    rows = [line.split() for line in log.splitlines()
            if re.match(r'\s*\d+ \S+ +\d+ ', line)]
    assert [int(r[0]) for r in rows] == list(range(11))
    printed = np.array([float(r[-1]) for r in rows]) / 100
    np.testing.assert_allclose(printed, images / n, atol=5.1e-5)  # 2 dec.
    np.testing.assert_allclose(stats['image_frequencies'], images / n,
                               rtol=1e-12)
    assert [int(r[-2]) for r in rows] == images.astype(int).tolist()
    line = next(line for line in log.splitlines() if 'Gini' in line)
    pixel_gini, image_gini = map(float, re.findall(r'\d+\.\d+', line)[-2:])
    assert pixel_gini == pytest.approx(gini_pairs(pixels), abs=5e-5)
    assert image_gini == pytest.approx(gini_pairs(images), abs=5e-5)
    assert stats['gini'] == dict(pixel=pytest.approx(gini_pairs(pixels)),
                                 image=pytest.approx(gini_pairs(images)))


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
