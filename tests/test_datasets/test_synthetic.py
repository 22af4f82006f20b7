import numpy as np
import pytest
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS

from mmseg_longtail.datasets import SyntheticLongTailDataset
from mmseg_longtail.datasets.synthetic import geometric_class_frequencies
from mmseg_longtail.utils import compute_class_stats


def test_geometric_frequencies():
    f = geometric_class_frequencies(5, 50.0)
    assert f.sum() == pytest.approx(1.0)
    assert f[0] / f[-1] == pytest.approx(50.0)
    assert np.all(np.diff(f) < 0)


def test_deterministic_and_shapes():
    ds = SyntheticLongTailDataset(num_classes=4, img_size=(40, 56), length=6,
                                  ignore_rows=3)
    a, b = ds.get_data_info(2), ds.get_data_info(2)
    np.testing.assert_array_equal(a['img'], b['img'])
    np.testing.assert_array_equal(a['gt_seg_map'], b['gt_seg_map'])
    assert a['img'].shape == (40, 56, 3) and a['img'].dtype == np.uint8
    assert a['gt_seg_map'].shape == (40, 56)
    assert np.all(a['gt_seg_map'][-3:] == 255)
    assert set(np.unique(a['gt_seg_map'][:-3])) <= set(range(4))
    c = ds.get_data_info(3)
    assert not np.array_equal(a['gt_seg_map'], c['gt_seg_map'])
    other_seed = SyntheticLongTailDataset(num_classes=4, img_size=(40, 56),
                                          length=6, ignore_rows=3, seed=1)
    assert not np.array_equal(other_seed.get_gt_seg_map(2), a['gt_seg_map'])


def test_pipeline_through_registry():
    init_default_scope('mmseg')
    ds = DATASETS.build(
        dict(type='SyntheticLongTailDataset', length=3,
             pipeline=[dict(type='RandomFlip', prob=1.0),
                       dict(type='PackSegInputs')]))
    out = ds[0]
    assert tuple(out['inputs'].shape) == (3, 64, 64)
    seg = out['data_samples'].gt_sem_seg.data
    assert tuple(seg.shape) == (1, 64, 64)
    flipped = ds.get_gt_seg_map(0)[:, ::-1]
    np.testing.assert_array_equal(seg[0].numpy(), flipped)
    assert ds.metainfo['classes'] == tuple(f'class{i}' for i in range(5))


def test_statistics_match_closed_form():
    ds = SyntheticLongTailDataset(num_classes=5, length=400,
                                  imbalance_ratio=20.0)
    stats = compute_class_stats(ds.get_gt_seg_map, 5, num_labels=len(ds),
                                progress=False)
    counts = np.asarray(stats['pixel_counts'], dtype=float)
    expected = ds.expected_pixel_counts()
    assert counts.sum() == pytest.approx(expected.sum())  # all valid pixels
    # Counts are multinomial over blocks: within 5 standard deviations.
    cells = expected / ds.cell_size**2  # expected number of blocks
    std = np.sqrt(cells * (1 - ds.class_freqs)) * ds.cell_size**2
    assert np.all(np.abs(counts - expected) < 5 * std + 1)
    # A real imbalance: head over tail close to the ratio.
    assert 10 < counts[0] / counts[-1] < 40
    images = np.asarray(stats['image_counts'], dtype=float)
    np.testing.assert_allclose(images, ds.expected_image_counts(), rtol=0.15)


@pytest.mark.parametrize('kwargs,match', [
    (dict(num_classes=1), 'num_classes'),
    (dict(imbalance_ratio=0.5), 'imbalance_ratio'),
    (dict(ignore_index=3), 'ignore_index'),
    (dict(cell_size=100), 'cell_size'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SyntheticLongTailDataset(**kwargs)
