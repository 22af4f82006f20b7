"""Malformed class-statistics JSON fails naming the file and the field."""
import json
import re

import numpy as np
import pytest

import mmseg_longtail  # noqa: F401
from mmseg.registry import METRICS, MODELS
from mmseg_longtail.utils import load_class_counts, save_class_stats

GOOD = dict(classes=['a', 'b', 'c'], ignore_index=255, num_images=4,
            pixel_counts=[900, 90, 9], image_counts=[4, 3, 1])


def write(tmp_path, text):
    path = tmp_path / 'stats.json'
    path.write_text(text)
    return str(path)


def truncated():
    text = json.dumps(GOOD, indent=2)
    return text[:len(text) // 2]


@pytest.mark.parametrize(
    'text, kind, error, words',
    [
        (truncated(), 'pixel', ValueError, ['not valid JSON', 'line']),
        ('', 'pixel', ValueError, ['not valid JSON']),
        ('[1, 2, 3]', 'pixel', ValueError, ['holds a list']),
        (json.dumps(dict(GOOD, pixel_counts='many')), 'pixel', ValueError,
         ['field pixel_counts', 'list of numbers']),
        (json.dumps(dict(GOOD, pixel_counts=[1, None, 3])), 'pixel',
         ValueError, ['field pixel_counts', 'non-finite']),
        (json.dumps(dict(GOOD, image_counts=[[1], [2], [3]])), 'image',
         ValueError, ['field image_counts', '1-D']),
        (json.dumps(dict(GOOD, pixel_counts=[1, -1, 3])), 'pixel',
         ValueError, ['field pixel_counts', 'negative']),
        (json.dumps(dict(GOOD, pixel_counts=[0, 0, 0])), 'pixel',
         ValueError, ['field pixel_counts', 'all zero']),
        (json.dumps(dict(GOOD, image_counts=[0, 0, 0])), 'image',
         ValueError, ['field image_counts', 'all zero']),
        (json.dumps(dict(pixel_counts=[5, 6, 7])), 'image', KeyError,
         ['image_counts']),
    ],
    ids=['truncated', 'empty', 'not-an-object', 'string-counts',
         'null-count', 'nested-counts', 'negative', 'all-zero-pixels',
         'all-zero-images', 'pixel-only-read-as-image'])
def test_bad_stats_file_names_file_and_field(text, kind, error, words,
                                             tmp_path):
    path = write(tmp_path, text)
    with pytest.raises(error) as info:
        load_class_counts(path, 3, kind=kind, field='class_counts')
    message = str(info.value.args[0])
    for word in ['class_counts', path] + words:
        assert word in message, message


def test_all_zero_list_refused():
    with pytest.raises(ValueError, match='class_counts are all zero'):
        load_class_counts([0, 0], 2)


def test_pixel_only_stats_file_serves_pixel_consumers(tmp_path):
    """A file without image_counts: every count_type='pixel' consumer (a
    loss, the metric's groups) reads it."""
    path = write(tmp_path, json.dumps(dict(pixel_counts=[900, 90, 9])))
    np.testing.assert_array_equal(load_class_counts(path, 3), [900, 90, 9])
    loss = MODELS.build(dict(type='BalancedSoftmaxLoss', class_counts=path))
    assert loss.num_classes == 3
    metric = METRICS.build(
        dict(type='LongTailIoUMetric', class_stats_file=path,
             json_dir=str(tmp_path)))
    metric.dataset_meta = dict(classes=('a', 'b', 'c'))
    assert metric.groups == dict(head=[0], body=[1], tail=[2])
    with pytest.raises(KeyError, match=re.escape(path)):
        MODELS.build(dict(type='BalancedSoftmaxLoss', class_counts=path,
                          count_type='image'))


def test_good_stats_file_still_loads(tmp_path):
    path = str(tmp_path / 'ok.json')
    save_class_stats(GOOD, path)
    np.testing.assert_array_equal(load_class_counts(path, 3), [900, 90, 9])
    np.testing.assert_array_equal(
        load_class_counts(path, 3, kind='image'), [4, 3, 1])
