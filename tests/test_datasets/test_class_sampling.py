"""Rare Class Sampling and repeat-factor sampling: the class distribution of
seeded draws, the crop threshold and its logged failures, repeat factors by
hand and against mmengine's ClassBalancedDataset, resume and ranks."""
import json

import numpy as np
import pytest
from mmengine.dataset import ClassBalancedDataset
from mmengine.hooks import Hook
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, HOOKS

import mmseg_longtail  # noqa: F401
import mmseg_longtail.datasets.class_sampling as cs
from mmseg_longtail.datasets import (RareClassSampleDataset,
                                     RepeatFactorDataset,
                                     SyntheticLongTailDataset,
                                     lvis_repeat_factors)
from mmseg_longtail.utils import compute_class_stats
from tests.tiny_runner import build_runner, synthetic, tiny_cfg

init_default_scope('mmseg')
SYN = dict(num_classes=5, img_size=(32, 32), cell_size=4, ignore_rows=0,
           length=48, seed=3)


def syn_stats(**overrides):
    ds = SyntheticLongTailDataset(**dict(SYN, **overrides))
    return compute_class_stats(ds.get_gt_seg_map, 5, 255,
                               num_labels=len(ds), progress=False)


@pytest.fixture(scope='module')
def stats():
    return syn_stats()


def within_3_sigma(counts, probs):
    n = counts.sum()
    sigma = np.sqrt(n * probs * (1 - probs))
    assert (np.abs(counts - n * probs) <= 3 * sigma + 1e-9).all(), (
        counts, n * probs)


@pytest.mark.parametrize('temperature', [0.05, 0.2])
def test_draws_follow_the_softmax(stats, temperature):
    wrapper = RareClassSampleDataset(dict(type='SyntheticLongTailDataset',
                                          **SYN), stats, temperature,
                                     min_pixels=1)
    f = np.asarray(stats['pixel_counts'], float)
    f /= f.sum()
    expected = np.exp((1 - f) / temperature)
    expected /= expected.sum()
    np.testing.assert_allclose(wrapper.class_probs, expected, rtol=1e-12)
    rng = np.random.default_rng(0)
    draws = np.array([wrapper.draw(rng) for _ in range(100_000)])
    within_3_sigma(np.bincount(draws[:, 0], minlength=5), expected)
    rows = np.asarray(stats['per_image_pixel_counts'])
    # every drawn image holds the drawn class
    assert (rows[draws[:, 1], draws[:, 0]] >= 1).all()
    # the same seed gives the same draws
    again = np.random.default_rng(0)
    assert [list(wrapper.draw(again)) for _ in range(5)] == draws[:5].tolist()


def test_very_large_temperature_is_uniform(stats):
    wrapper = RareClassSampleDataset(dict(type='SyntheticLongTailDataset',
                                          **SYN), stats, 1e9, min_pixels=1)
    np.testing.assert_allclose(wrapper.class_probs, 0.2, rtol=1e-8)
    rng = np.random.default_rng(1)
    draws = np.array([wrapper.draw(rng)[0] for _ in range(100_000)])
    within_3_sigma(np.bincount(draws, minlength=5), np.full(5, 0.2))


def test_min_pixels_restricts_images_and_classes(stats):
    rows = np.asarray(stats['per_image_pixel_counts'])
    threshold = int(np.sort(rows[:, 4])[-3])  # 3 images reach it (or ties)
    wrapper = RareClassSampleDataset(dict(type='SyntheticLongTailDataset',
                                          **SYN), stats, 0.1,
                                     min_pixels=threshold)
    assert set(wrapper.images_of[4]) == set(
        np.flatnonzero(rows[:, 4] >= threshold))
    huge = RareClassSampleDataset(dict(type='SyntheticLongTailDataset',
                                       **SYN), stats, 0.1,
                                  min_pixels=int(rows[:, 0].max()))
    assert huge.class_probs[0] == 1.0  # only class 0 reaches it


def test_crops_meet_the_threshold_or_the_failure_is_logged(stats,
                                                           monkeypatch):
    logged = []
    monkeypatch.setattr(cs, 'print_log',
                        lambda msg, **kw: logged.append(msg))
    pipeline = [dict(type='RandomCrop', crop_size=(8, 8)),
                dict(type='PackSegInputs')]
    results = {}
    for retries in (0, 10):
        wrapper = RareClassSampleDataset(
            dict(type='SyntheticLongTailDataset', pipeline=pipeline, **SYN),
            stats, 0.5, min_pixels=40, min_crop_ratio=0.5,
            max_retries=retries, seed=0)
        assert wrapper.crop_pixels == 20
        logged.clear()
        ok_count = 0
        for _ in range(150):
            c, index = wrapper.draw()
            sample, ok = wrapper.crop(c, index)
            held = int((sample['data_samples'].gt_sem_seg.data == c).sum())
            assert ok == (held >= 20)
            ok_count += ok
        failures = [m for m in logged if 'crops of image' in m]
        assert len(failures) == 150 - ok_count == wrapper.failed_crops
        assert all(f'{1 + retries} crops of image' in m for m in failures)
        results[retries] = ok_count
        # __getitem__ is draw + crop
        sample = wrapper[0]
        assert sample['inputs'].shape[-2:] == (8, 8)
    assert 0 < results[0] < results[10]


def test_ranks_draw_differently(stats, monkeypatch):
    cfg = dict(type='SyntheticLongTailDataset', **SYN)
    draws = []
    for rank in (0, 1):
        monkeypatch.setattr(cs, 'get_dist_info', lambda r=rank: (r, 2))
        wrapper = RareClassSampleDataset(cfg, stats, 0.5, min_pixels=1,
                                         seed=7)
        draws.append([wrapper.draw() for _ in range(20)])
    assert draws[0] != draws[1]


@pytest.mark.parametrize('kwargs, error, match', [
    (dict(temperature=0), ValueError, 'temperature must be > 0'),
    (dict(min_pixels=0), ValueError, 'min_pixels must be >= 1'),
    (dict(max_retries=-1), ValueError, 'max_retries must be >= 0'),
    (dict(min_pixels=10**9), ValueError, 'no image holds'),
])
def test_rcs_argument_errors(stats, kwargs, error, match):
    with pytest.raises(error, match=match):
        RareClassSampleDataset(dict(type='SyntheticLongTailDataset', **SYN),
                               stats, **kwargs)


def test_statistics_must_match_the_data_set(stats, tmp_path):
    cfg = dict(type='SyntheticLongTailDataset', **dict(SYN, length=40))
    with pytest.raises(ValueError, match=r'count 48 images x 5 classes, the '
                       r'data set has 40 x 5'):
        RareClassSampleDataset(cfg, stats, min_pixels=1)
    old = tmp_path / 'old.json'
    old.write_text(json.dumps({k: stats[k] for k in (
        'classes', 'ignore_index', 'num_images', 'pixel_counts',
        'image_counts')}))
    with pytest.raises(KeyError, match="RepeatFactorDataset needs the field "
                       "'per_image_pixel_counts'.*old.json"):
        RepeatFactorDataset(dict(type='SyntheticLongTailDataset', **SYN),
                            str(old), oversample_thr=0.5)


def test_repeat_factors_by_hand():
    # 4 images x 3 classes: f = [3/4, 1/4, 1/4] at min_pixels=1
    rows = np.array([[10, 0, 0], [10, 5, 0], [10, 0, 0], [0, 0, 3]])
    r = np.sqrt(0.5 / 0.25)  # classes 1 and 2; class 0: max(1, 0.82) = 1
    np.testing.assert_allclose(lvis_repeat_factors(rows >= 1, 0.5),
                               [1, r, 1, r])
    # min_pixels=4 drops class 2 from image 3, which then has no class
    np.testing.assert_allclose(lvis_repeat_factors(rows >= 4, 0.5),
                               [1, r, 1, 1])
    np.testing.assert_allclose(lvis_repeat_factors(rows >= 1, 0.1),
                               [1, 1, 1, 1])

    class Toy:
        metainfo = dict(classes=('a', 'b', 'c'))

        def __len__(self):
            return 4

        def full_init(self):
            pass

        def __getitem__(self, i):
            return i

        def get_data_info(self, i):
            return dict(seg_map_path=f'{i}.png')

    # mmengine's constructor insists on a BaseDataset: set the fields it
    # would, then run the real full_init on the hand-built counts
    toy = RepeatFactorDataset.__new__(RepeatFactorDataset)
    toy.dataset, toy.oversample_thr, toy._metainfo = Toy(), 0.5, {}
    toy.class_stats = dict(per_image_pixel_counts=rows.tolist())
    toy.min_pixels, toy._fully_initialized = 1, False
    toy.full_init()
    assert toy.repeat_indices == [0, 1, 1, 2, 3, 3]
    assert [toy.get_cat_ids(i) for i in range(6)] == [[0], [0, 1], [0, 1],
                                                      [0], [2], [2]]
    assert [toy[i] for i in range(len(toy))] == [0, 1, 1, 2, 3, 3]


def test_repeat_factor_dataset_equals_mmengine_on_get_cat_ids(stats):
    cfg = dict(type='SyntheticLongTailDataset', **SYN)
    ours = RepeatFactorDataset(cfg, stats, oversample_thr=0.9)
    theirs = ClassBalancedDataset(DATASETS.build(cfg), oversample_thr=0.9)
    assert ours.repeat_indices == theirs.repeat_indices
    assert len(ours) > len(ours.dataset)  # something is repeated


@HOOKS.register_module(force=True)
class BatchRecorderHook(Hook):
    records = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        gts = [s.gt_sem_seg.data.sum().item()
               for s in data_batch['data_samples']]
        type(self).records.append((runner.iter, gts))


def test_rcs_draws_survive_resume(tmp_path):
    stats = tmp_path / 'stats.json'
    train = synthetic(8, pipeline=[dict(type='RandomCrop', crop_size=(8, 8)),
                                   dict(type='PackSegInputs')])
    ds = DATASETS.build(train)
    stats.write_text(json.dumps(compute_class_stats(
        ds.get_gt_seg_map, 5, 255, num_labels=8, progress=False)))
    wrapper = dict(type='RareClassSampleDataset', dataset=train,
                   class_stats=str(stats), temperature=0.1, min_pixels=8)

    def run(name, iters, resume=False, ckpt=1000):
        BatchRecorderHook.records = []
        cfg = tiny_cfg(tmp_path / name, max_iters=iters,
                       train_dataset=wrapper, checkpoint_interval=ckpt,
                       custom_hooks=[dict(type='BatchRecorderHook')])
        cfg.model.data_preprocessor.size = (8, 8)
        cfg.experiment_name = f'rcs_{name}_{iters}_{resume}'
        cfg.resume = resume
        build_runner(cfg).train()
        return list(BatchRecorderHook.records)

    full = run('full', 6)
    run('resumed', 3, ckpt=3)
    resumed = run('resumed', 6, resume=True)
    assert [r[0] for r in resumed] == [3, 4, 5]
    assert resumed == full[3:]
