"""Every config in configs/rebalance/ builds and trains two iterations on
the synthetic data, its statistics written where the configs read them."""
from pathlib import Path

import pytest
from mmengine.config import Config

import mmseg_longtail  # noqa: F401
from mmseg_longtail.datasets import SyntheticLongTailDataset
from mmseg_longtail.utils import compute_class_stats, save_class_stats
from tests.conftest import REPO_ROOT
from tests.tiny_runner import build_runner

CONFIGS = sorted((REPO_ROOT / 'configs' / 'rebalance').glob('*.py'))


@pytest.fixture(scope='module')
def synthetic_stats(tmp_path_factory):
    """The quick start's train split statistics (256 images, seed 0)."""
    ds = SyntheticLongTailDataset(length=256, seed=0)
    return compute_class_stats(ds.get_gt_seg_map, 5, num_labels=256,
                               progress=False)


def test_every_piece_has_a_config():
    names = {p.stem.split('_')[0] for p in CONFIGS}
    assert names == {'ce-mfb', 'ce-drw', 'ce', 'ce-rcs', 'ce-rfs',
                     'ceco-frozen', 'cbfocal-sigmoid'}


@pytest.mark.parametrize('path', CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_trains(path: Path, tmp_path, monkeypatch, synthetic_stats):
    monkeypatch.chdir(tmp_path)  # the configs read work_dirs/...json
    save_class_stats(synthetic_stats, 'work_dirs/synthetic_stats.json')
    cfg = Config.fromfile(str(path))
    cfg.work_dir = str(tmp_path / 'work')
    cfg.experiment_name = f'cfg_{path.stem}'
    cfg.train_cfg.max_iters = 2
    cfg.train_cfg.val_interval = 2
    cfg.train_dataloader.batch_size = 2
    cfg.val_dataloader.dataset.length = 4
    cfg.default_hooks.checkpoint.interval = 1000
    cfg.log_level = 'WARNING'
    runner = build_runner(cfg)
    runner.train()  # validation at iteration 2 included
