import json

import numpy as np
import pytest

from mmseg_longtail.utils import (class_gini, class_prior,
                                  compute_class_stats, count_label_map,
                                  frequency_groups, gini_coefficient,
                                  image_frequencies, list_label_files,
                                  load_class_counts, save_class_stats)
from tests.conftest import CAMVID_TRAIN_PIXELS


def _png(path, array):
    from PIL import Image
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)


def test_count_label_map_ignores_and_validates():
    label = np.array([[0, 1, 1], [255, 2, 255]])
    np.testing.assert_array_equal(count_label_map(label, 3), [1, 2, 1])
    with pytest.raises(ValueError, match=r'\[7\].*ignore_index=255'):
        count_label_map(np.array([[0, 7]]), 3)


def test_compute_class_stats_on_pngs(tmp_path):
    labels = [np.array([[0, 0], [1, 9]]), np.array([[2, 2], [2, 9]]),
              np.array([[9, 9], [9, 9]])]
    for i, lab in enumerate(labels):
        _png(tmp_path / f'{i}.png', lab)
    files = list_label_files(str(tmp_path))
    for workers in (1, 2):
        stats = compute_class_stats(files, 3, ignore_index=9,
                                    workers=workers, progress=False)
        assert stats['pixel_counts'] == [2, 1, 3]
        assert stats['image_counts'] == [1, 1, 1]
        assert stats['num_images'] == 3
        assert stats['ignore_index'] == 9
        assert stats['classes'] == ['class0', 'class1', 'class2']


def test_image_frequencies_and_gini_by_hand():
    """Three 2x3 labels, 9 ignored; class 3 never occurs."""
    labels = [np.array([[0, 0, 0], [0, 1, 9]]),
              np.array([[0, 9, 9], [9, 9, 9]]),   # one pixel of class 0
              np.array([[2, 2, 9], [1, 9, 9]])]
    stats = compute_class_stats(labels, 4, ignore_index=9, progress=False)
    assert stats['pixel_counts'] == [5, 2, 2, 0]
    assert stats['image_counts'] == [2, 2, 1, 0]
    assert stats['image_frequencies'] == [2 / 3, 2 / 3, 1 / 3, 0.0]
    np.testing.assert_array_equal(image_frequencies(stats),
                                  [2 / 3, 2 / 3, 1 / 3, 0])
    # pixels 5 2 2 0: sum |xi - xj| over ordered pairs = 2 (3+3+5+0+2+2)
    # = 30, mean 9/4 -> G = 30 / (2 * 16 * 9/4) = 5/12
    # images 2 2 1 0: 2 (0+1+2+1+2+1) = 14 -> G = 14 / (2 * 16 * 5/4)
    assert stats['gini']['pixel'] == pytest.approx(5 / 12, rel=1e-12)
    assert stats['gini']['image'] == pytest.approx(7 / 20, rel=1e-12)
    assert class_gini(stats) == stats['gini']


@pytest.mark.parametrize('values,expected', [
    ([3, 3, 3], 0.0),
    ([1, 0, 0, 0], 3 / 4),            # (n - 1) / n: one class holds all
    ([1, 2, 3, 4], 10 / 40),          # 2 * 10 / (2 * 16 * 2.5)
    ([7], 0.0),
])
def test_gini_coefficient(values, expected):
    assert gini_coefficient(values) == pytest.approx(expected, abs=1e-15)
    assert gini_coefficient(values[::-1]) == pytest.approx(expected,
                                                           abs=1e-15)


def test_gini_coefficient_undefined_and_bad():
    assert np.isnan(gini_coefficient([0, 0]))
    assert np.isnan(gini_coefficient([]))
    with pytest.raises(ValueError, match='non-negative'):
        gini_coefficient([1, -1])


def test_old_stats_give_the_new_values():
    """Files written before image_frequencies / gini: the readers derive
    them from the counts."""
    old = dict(num_images=4, pixel_counts=[9, 1], image_counts=[4, 1])
    np.testing.assert_array_equal(image_frequencies(old), [1.0, 0.25])
    assert class_gini(old) == dict(pixel=pytest.approx(0.4),
                                   image=pytest.approx(0.3))
    assert set(class_gini(dict(pixel_counts=[1, 1]))) == {'pixel'}
    with pytest.raises(KeyError, match='image_counts'):
        image_frequencies(dict(pixel_counts=[1]))


def test_compute_class_stats_names_bad_file(tmp_path):
    _png(tmp_path / 'bad.png', [[0, 5]])
    with pytest.raises(ValueError, match='bad.png'):
        compute_class_stats([str(tmp_path / 'bad.png')], 3, progress=False)


def test_load_class_counts_list_and_file(tmp_path):
    np.testing.assert_array_equal(load_class_counts([3, 0, 1], 3), [3, 0, 1])
    path = tmp_path / 'stats.json'
    save_class_stats(dict(classes=['a', 'b'], ignore_index=255, num_images=2,
                          pixel_counts=[10, 2], image_counts=[2, 1]),
                     str(path))
    np.testing.assert_array_equal(load_class_counts(str(path), 2), [10, 2])
    np.testing.assert_array_equal(
        load_class_counts(str(path), 2, kind='image'), [2, 1])


@pytest.mark.parametrize('counts,num_classes,kind,match', [
    ([1, -2, 3], 3, 'pixel', r'class_counts has negative counts at class ids '
     r'\[1\]'),
    ([1, 2], 3, 'pixel', 'class_counts has 2 counts but num_classes is 3'),
    ('missing/stats.json', 3, 'pixel', 'class_counts: .*not found'),
    ([1, 2, 3], 3, 'voxel', 'count_type must be one of'),
    ([], None, 'pixel', 'non-empty'),
    ([1, float('nan')], None, 'pixel', 'non-finite'),
])
def test_load_class_counts_errors(counts, num_classes, kind, match):
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        load_class_counts(counts, num_classes, kind=kind)


def test_load_class_counts_file_missing_key(tmp_path):
    """Only the count list that is read must be there: a pixel-only file
    serves count_type='pixel'."""
    path = tmp_path / 's.json'
    path.write_text(json.dumps(dict(pixel_counts=[1, 2])))
    np.testing.assert_array_equal(load_class_counts(str(path), 2), [1, 2])
    with pytest.raises(KeyError, match='image_counts'):
        load_class_counts(str(path), 2, kind='image')


def test_class_prior_clamps_zero():
    prior = class_prior([3, 0, 1])
    np.testing.assert_allclose(prior, [3 / 5, 1 / 5, 1 / 5])
    assert np.all(np.isfinite(np.log(prior)))


def test_frequency_groups_terciles():
    counts = [50, 1, 900, 7, 300, 20]
    groups = frequency_groups(counts)
    assert groups == dict(head=[2, 4], body=[0, 5], tail=[1, 3])
    assert frequency_groups(counts, (0.5, 0.5)) == dict(
        head=[0, 2, 4], body=[], tail=[1, 3, 5])
    with pytest.raises(ValueError, match='thresholds'):
        frequency_groups(counts, (0.8, 0.2))


def test_camvid_counts_reproduce_readme(camvid_root):
    files = list_label_files(str(camvid_root / 'ann_dir' / 'train'))
    stats = compute_class_stats(files, 11, ignore_index=11, workers=2,
                                progress=False)
    assert stats['num_images'] == 367
    assert stats['pixel_counts'] == CAMVID_TRAIN_PIXELS
