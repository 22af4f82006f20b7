"""Drop-in: each loss base config trains a real mmseg model with mmengine's
Runner (tiny U-Net, synthetic long-tailed 64x64 data, a few iterations),
alone and as a list with CE; its loss is logged and decreases."""
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
CONFIG = REPO / 'configs' / 'quickstart' / 'unet_tiny_synthetic_ce.py'
LOSS_BASES = REPO / 'configs' / '_base_' / 'losses'
LOSSES = ['ce', 'focal', 'cb', 'cbfocal', 'bms', 'ldam', 'blv', 'pat']
# trained alone only: in the list the other terms dominate and the top-k
# CE of the hardest pixels may rise while the model learns
ALONE = ['recall', 'seesaw', 'topk_ce']
COUNTED = ('cb', 'cbfocal', 'bms', 'ldam', 'blv')
ITERS = 12


@pytest.fixture(scope='module')
def stats_file(tmp_path_factory):
    """Class statistics of the synthetic train split, as class_stats.py
    writes them."""
    import mmseg_longtail  # noqa: F401
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS

    from mmseg_longtail.utils import compute_class_stats, save_class_stats
    init_default_scope('mmseg')
    cfg = Config.fromfile(str(CONFIG))
    dataset_cfg = dict(cfg.train_dataloader.dataset, length=32)
    dataset = DATASETS.build(dataset_cfg)
    stats = compute_class_stats(
        dataset.get_gt_seg_map,
        num_classes=cfg.num_classes,
        num_labels=len(dataset),
        progress=False)
    path = tmp_path_factory.mktemp('stats') / 'synthetic_stats.json'
    save_class_stats(stats, str(path))
    return str(path)


def loss_cfg(name, stats_file):
    from mmengine.config import Config
    cfg = Config.fromfile(str(LOSS_BASES / f'{name}.py')).loss_decode
    cfg = dict(cfg)
    if name in COUNTED:
        cfg['class_counts'] = stats_file
    if name == 'ldam':
        cfg['s'] = 1.0  # raw logits of a randomly initialised head
    return cfg


def train(loss_decode, work_dir: Path, name: str, iters: int = ITERS):
    """Train ``iters`` iterations; returns the per-iteration log dicts and
    the text of the log file."""
    from mmengine.config import Config
    from mmengine.hooks import Hook
    from tests.tiny_runner import build_runner

    cfg = Config.fromfile(str(CONFIG))
    cfg.model.decode_head.loss_decode = loss_decode
    cfg.train_dataloader.dataset.length = 32
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters,
                         val_interval=10 * iters)
    for split in ('val', 'test'):
        cfg[f'{split}_dataloader'] = None
        cfg[f'{split}_cfg'] = None
        cfg[f'{split}_evaluator'] = None
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.param_scheduler = []
    cfg.optim_wrapper = dict(
        type='OptimWrapper',
        optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=0))
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = f'loss_drop_in_{name}'
    cfg.randomness = dict(seed=0)

    class Record(Hook):
        def __init__(self):
            self.history = []

        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            self.history.append(
                {k: float(v) for k, v in outputs.items()})

    runner = build_runner(cfg)
    record = Record()
    runner.register_hook(record)
    runner.train()
    log = ''.join(p.read_text() for p in work_dir.rglob('*.log'))
    return record.history, log


def _decreases(values):
    k = 4
    return sum(values[-k:]) / k < sum(values[:k]) / k


def check_logged(history, log, names, iters=ITERS):
    """Every named loss is logged, finite and decreasing, and the total that
    mmseg back-propagates is their sum."""
    assert len(history) == iters
    keys = [f'decode.{n}' for n in names]
    for key in keys:
        values = [h[key] for h in history]
        assert all(v == v and abs(v) < 1e6 for v in values), (key, values)
        assert key in log, f'{key} missing from the training log'
        assert _decreases(values), (key, values)
    total = [h['loss'] for h in history]
    parts = [sum(h[k] for k in keys) for h in history]
    assert total == pytest.approx(parts, rel=1e-5)


@pytest.mark.parametrize('name', LOSSES + ALONE)
def test_loss_trains_in_runner(name, stats_file, tmp_path):
    from mmseg.registry import MODELS
    cfg = loss_cfg(name, stats_file)
    history, log = train(cfg, tmp_path, name)
    check_logged(history, log, [MODELS.build(cfg).loss_name])


def test_losses_as_list_with_ce(stats_file, tmp_path):
    """``loss_decode`` as a list: CE plus every long-tail loss at once."""
    from mmseg.registry import MODELS
    cfgs = [loss_cfg(name, stats_file) for name in LOSSES]
    for cfg in cfgs:
        cfg['loss_weight'] = 1.0 / len(cfgs)
    names = [MODELS.build(cfg).loss_name for cfg in cfgs]
    assert len(set(names)) == len(names), names  # distinct log entries
    # each loss gets 1/8 of the gradient: a few more iterations
    history, log = train(cfgs, tmp_path, 'list', iters=2 * ITERS)
    check_logged(history, log, names, iters=2 * ITERS)
