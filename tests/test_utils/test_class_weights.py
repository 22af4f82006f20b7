"""Class-weight generators: closed forms on a hand-built label set and on
the real CamVid train labels, the 'stats.json:<name>' spec of the losses,
and old statistics files."""
import json
import math

import numpy as np
import pytest
import torch
from mmseg.registry import MODELS

import mmseg_longtail  # noqa: F401
from mmseg_longtail.utils import (GENERATORS, class_weights_from_stats,
                                  compute_class_stats, list_label_files,
                                  load_weight_spec, save_class_stats)
from mmseg_longtail.utils.class_weights import parse_weight_spec
from tests.conftest import CAMVID_TRAIN_PIXELS

# three 1x4 label maps, 9 = ignored
LABELS = [np.array([[0, 0, 0, 1]]), np.array([[0, 2, 2, 9]]),
          np.array([[1, 1, 1, 1]])]
# by hand: pixels n = [4, 5, 2]; labelled pixels of the images holding c:
# class 0 in images 0, 1 (4 + 3), class 1 in 0, 2 (4 + 4), class 2 in 1 (3)
N = np.array([4., 5., 2.])
T = np.array([7., 8., 3.])


def mean_one(w):
    w = np.asarray(w, dtype=np.float64)
    return w * len(w) / w.sum()


# freq = n / T = [4/7, 5/8, 2/3], median 5/8
CLOSED_FORM = {
    'mfb': mean_one([(5 / 8) / (4 / 7), 1.0, (5 / 8) / (2 / 3)]),
    'enet': mean_one([1 / math.log(1.02 + n / 11) for n in N]),
    'inverse': mean_one([11 / 4, 11 / 5, 11 / 2]),
    'sqrt_inverse': mean_one([math.sqrt(11 / n) for n in N]),
}


@pytest.fixture(scope='module')
def stats():
    return compute_class_stats(LABELS, 3, ignore_index=9, progress=False)


def test_stats_hold_the_generator_counts(stats):
    assert stats['pixel_counts'] == N.tolist()
    assert stats['image_pixel_totals'] == T.tolist()
    assert stats['per_image_pixel_counts'] == [[3, 1, 0], [1, 0, 2],
                                               [0, 4, 0]]
    assert set(GENERATORS) == set(CLOSED_FORM)


@pytest.mark.parametrize('name', sorted(CLOSED_FORM))
def test_closed_form_on_hand_built_labels(stats, name):
    weights = class_weights_from_stats(stats, name)
    np.testing.assert_allclose(weights, CLOSED_FORM[name], rtol=1e-12)
    assert weights.mean() == pytest.approx(1.0)


@pytest.mark.parametrize('name', sorted(CLOSED_FORM))
def test_unseen_class_takes_largest_seen_weight(name):
    stats = dict(pixel_counts=[4, 5, 0, 2], image_pixel_totals=[7, 8, 0, 3])
    weights = class_weights_from_stats(stats, name)
    seen = weights[[0, 1, 3]]
    assert np.isfinite(weights).all()
    assert weights[2] == pytest.approx(seen.max())
    # the seen classes keep their ratios
    np.testing.assert_allclose(seen / seen[0],
                               CLOSED_FORM[name] / CLOSED_FORM[name][0])
    none_seen = class_weights_from_stats(
        dict(pixel_counts=[0, 0], image_pixel_totals=[0, 0]), name)
    np.testing.assert_array_equal(none_seen, [1.0, 1.0])


def test_spec_in_any_loss_class_weight(tmp_path, stats):
    path = tmp_path / 'stats.json'
    save_class_stats(stats, str(path))
    for name, expected in CLOSED_FORM.items():
        loss = MODELS.build(dict(type='SoftmaxFocalLoss', gamma=0.0,
                                 class_weight=f'{path}:{name}'))
        np.testing.assert_allclose(loss.class_weight, expected, rtol=1e-12)
        # the weighted loss equals torch's weighted CE with these weights
        logits = torch.randn(2, 3, 4, 4, generator=torch.Generator()
                             .manual_seed(0))
        label = torch.randint(0, 3, (2, 4, 4))
        ref = torch.nn.functional.cross_entropy(
            logits, label, weight=torch.tensor(expected, dtype=torch.float32))
        torch.testing.assert_close(loss(logits, label), ref)


@pytest.mark.parametrize('spec, parsed', [
    ('a/stats.json:mfb', ('a/stats.json', 'mfb')),
    ('C:/data/stats.json:enet', ('C:/data/stats.json', 'enet')),
    ('weights.json', None),
    ('weights.npy', None),
    ([1.0, 2.0], None),
    (None, None),
])
def test_parse_spec(spec, parsed):
    assert parse_weight_spec(spec) == parsed


def test_spec_errors_name_the_problem(tmp_path, stats):
    path = tmp_path / 'stats.json'
    save_class_stats(stats, str(path))
    with pytest.raises(ValueError, match=r"class_weight: unknown class-weight"
                       r" generator 'median'.*'enet'"):
        MODELS.build(dict(type='SoftmaxFocalLoss',
                          class_weight=f'{path}:median'))
    with pytest.raises(FileNotFoundError, match='class_weight: .*not found'):
        load_weight_spec(f'{tmp_path}/missing.json:mfb')
    # an old file (before image_pixel_totals) loads for everything but mfb
    old = {k: v for k, v in stats.items()
           if k in ('classes', 'ignore_index', 'num_images', 'pixel_counts',
                    'image_counts')}
    old_path = tmp_path / 'old.json'
    old_path.write_text(json.dumps(old))
    np.testing.assert_allclose(load_weight_spec(f'{old_path}:enet'),
                               CLOSED_FORM['enet'])
    with pytest.raises(KeyError, match=r"class_weight: class weights 'mfb' "
                       r"needs the field 'image_pixel_totals'.*old\.json"):
        load_weight_spec(f'{old_path}:mfb')


def test_closed_form_on_camvid_train(camvid_root):
    """The real CamVid train labels (ignore id 11): the statistics and the
    weights against a plain per-image count."""
    from PIL import Image
    files = list_label_files(str(camvid_root / 'ann_dir' / 'train'))
    stats = compute_class_stats(files, 11, ignore_index=11, workers=2,
                                progress=False)
    assert stats['pixel_counts'] == CAMVID_TRAIN_PIXELS
    n = np.zeros(11)
    totals = np.zeros(11)
    for f in files:
        label = np.asarray(Image.open(f)).ravel()
        counts = np.bincount(label[label != 11], minlength=11)
        n += counts
        totals[counts > 0] += counts.sum()
    np.testing.assert_array_equal(stats['image_pixel_totals'], totals)
    p = n / n.sum()
    freq = n / totals
    expected = {
        'mfb': mean_one(np.median(freq) / freq),
        'enet': mean_one(1 / np.log(1.02 + p)),
        'inverse': mean_one(1 / p),
        'sqrt_inverse': mean_one(1 / np.sqrt(p)),
    }
    for name, value in expected.items():
        np.testing.assert_allclose(class_weights_from_stats(stats, name),
                                   value, rtol=1e-12)
    # rarest class (Bicyclist) gets the largest inverse-frequency weight
    assert class_weights_from_stats(stats, 'inverse').argmax() == 10
