"""The 260 grid configs and the drop-in examples: composition, model builds
(meta device; every data set x model with CE, every loss x model on CamVid),
a tiny forward per loss and per model, and every grid data set built with a
faked ``data_root``."""
import copy
import fnmatch
import functools
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from PIL import Image

import mmseg_longtail  # noqa: F401  (registration)
from mmseg_longtail.experiments import (Cell, filter_cells, load_study,
                                        sweep_cells)
from mmseg_longtail.experiments.cells import split_patterns
from mmseg_longtail.experiments.render import (expected_leaf_configs,
                                               leaf_config_path)
from mmseg.registry import DATASETS, MODELS
from mmseg.structures import SegDataSample
from mmengine.structures import PixelData

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / 'configs' / '_base_'
GRID = REPO / 'configs' / 'grid'
DROPIN = REPO / 'configs' / 'dropin'


GRID_STUDY = load_study(str(REPO / 'configs' / 'grid' / 'paper_grid.py'))
GRID_LOSSES, GRID_MODELS = GRID_STUDY.losses, GRID_STUDY.models
GRID_DATASETS = GRID_STUDY.datasets
GRID_STUDY_SWEEP = sweep_cells(GRID_STUDY)
GRID_FILES = sorted(GRID.glob('*/*.py'))
# composition and builds: a leaf's model and data parts do not depend on its
# loss, nor its loss part on the data set beyond the statistics file, so
# every (data set, model) is built with CE and every (loss, model) on CamVid
BUILT_FILES = [p for p in GRID_FILES if p.parent.name == 'ce'
               or '_camvid-' in p.stem]
COUNTED_TYPES = {'ClassBalancedLoss', 'BalancedSoftmaxLoss', 'LDAMLoss',
                 'BLVLoss'}


@pytest.fixture(scope='module', autouse=True)
def mmseg_scope():
    init_default_scope('mmseg')


def write_stats(path: Path, num_classes: int) -> Path:
    """A statistics JSON like tools/analysis_tools/class_stats.py writes,
    with geometric (long-tailed) counts."""
    counts = [int(1e6 * 0.7**i) + 1 for i in range(num_classes)]
    path.write_text(json.dumps(dict(
        classes=[f'class{i}' for i in range(num_classes)], ignore_index=255,
        num_images=100, pixel_counts=counts,
        image_counts=[max(1, c // 10000) for c in counts])))
    return path


def cell_of(path: Path):
    """(dataset, model, loss) from the file name alone (independent of
    grid_spec's name builder: the pieces are matched, not rebuilt)."""
    loss = path.parent.name
    stem = path.stem
    assert stem.startswith(GRID_LOSSES[loss].name + '_'), stem
    models = [m for m, v in GRID_MODELS.items()
              if stem[len(loss) + 1:].startswith(v.file_name + '_')]
    datasets = [d for d, v in GRID_DATASETS.items()
                if re.search(rf'_{re.escape(v.name)}-\d+x\d+$', stem)]
    assert len(models) == 1 and len(datasets) == 1, stem
    return datasets[0], models[0], loss


def test_grid_is_complete_and_generated():
    assert len(GRID_FILES) == 260
    cells = {cell_of(p) for p in GRID_FILES}
    assert len(cells) == 260
    assert {c[0] for c in cells} == {'pet', 'cityscapes', 'nyuv2', 'camvid'}
    assert {c[1] for c in cells} == {
        'unet', 'attunet', 'unetpp', 'deeplabv3', 'deeplabv3plus'}
    assert {c[2] for c in cells} == {
        'ce', 'focal', 'cb', 'cbfocal', 'bms', 'ldam', 'blv', 'pat', 'recall',
        'seesaw', 'eqlv2', 'efl', 'topk'}
    assert len(BUILT_FILES) == 4 * 5 + 12 * 5
    # the files are exactly what the generator writes (no hand edits)
    expected = expected_leaf_configs(GRID_STUDY)
    assert sorted(map(str, GRID_FILES)) == sorted(expected)
    for path in GRID_FILES:
        assert path.read_text() == expected[str(path)], path
    # each leaf is a few lines of composition
    for path in GRID_FILES:
        code = [ln for ln in path.read_text().splitlines()
                if ln.strip() and not ln.lstrip().startswith('#')]
        assert len(code) <= 20, path


@functools.lru_cache(maxsize=None)
def _base_cfg(rel):
    """A base config, parsed once (the tests only read it)."""
    return Config.fromfile(str(BASE / rel))


@pytest.mark.parametrize('path', BUILT_FILES, ids=lambda p: p.stem)
def test_grid_config_composes_and_builds(path, tmp_path):
    dataset, model, loss = cell_of(path)
    ds_base = _base_cfg(GRID_DATASETS[dataset].base)
    model_base = _base_cfg(GRID_MODELS[model].base)
    loss_base = _base_cfg(GRID_LOSSES[loss].base)
    cfg = Config.fromfile(str(path))

    k = ds_base.num_classes
    head, aux = cfg.model.decode_head, cfg.model.auxiliary_head
    assert head.num_classes == k
    # the decode head's loss is the loss base's, plus class counts
    expected = dict(loss_base.loss_decode)
    if expected['type'] in COUNTED_TYPES:
        expected['class_counts'] = ds_base.class_stats_file
    assert dict(head.loss_decode) == expected
    # everything else of the heads and backbone comes from the model base
    assert head.type == model_base.model.decode_head.type
    # the spec's auxiliary-head choice: the U-Net family has none (as in
    # the papers), DeepLab keeps the base's CE head
    if model in ('unet', 'attunet', 'unetpp'):
        assert GRID_MODELS[model].aux == 'none' and aux is None
        assert '-noaux_' in path.stem
    else:
        assert GRID_MODELS[model].aux == 'ce' and aux.num_classes == k
        assert dict(aux.loss_decode) == dict(
            model_base.model.auxiliary_head.loss_decode)
    assert cfg.model.backbone == model_base.model.backbone
    # data, evaluation and schedule come from their bases untouched
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader',
                'val_evaluator', 'test_evaluator'):
        assert cfg[key] == ds_base[key], key
    assert cfg.train_cfg.max_iters == 30000
    assert cfg.param_scheduler[0]['end'] == 30000
    assert f'1xb{ds_base.train_dataloader.batch_size}-30k' in path.stem
    h, w = ds_base.crop_size
    assert path.stem.endswith(f'-{h}x{w}')
    prep = cfg.model.data_preprocessor
    # training batches are padded to the crop size (mmseg allows `size` or
    # `size_divisor`, not both); mmseg's UNet needs multiples of 16
    assert prep.get('size_divisor') is None
    divisor = 16 if model == 'unet' else 1
    assert tuple(prep.size) == tuple(-(-s // divisor) * divisor
                                     for s in ds_base.crop_size)

    # the model builds (meta device: no memory, no init cost); a counted
    # loss reads its statistics file at build time, so point it at one
    model_cfg = copy.deepcopy(cfg.model)
    if 'class_counts' in model_cfg.decode_head.loss_decode:
        model_cfg.decode_head.loss_decode.class_counts = str(
            write_stats(tmp_path / 'stats.json', k))
    with torch.device('meta'):
        segmentor = MODELS.build(model_cfg)
    assert type(segmentor.decode_head.loss_decode).__name__ == \
        expected['type']
    assert segmentor.decode_head.num_classes == k
    assert segmentor.decode_head.conv_seg.out_channels == k


def _forward_cases():
    """Every loss on UNet and every model with PAT (CamVid cells)."""
    cases = [('camvid', 'unet', lo) for lo in GRID_LOSSES]
    cases += [('camvid', m, 'pat') for m in GRID_MODELS if m != 'unet']
    return cases


@pytest.fixture
def one_thread():
    # tiny convolutions: thread start-up costs more than it saves, and much
    # more on a loaded machine
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize('cell', _forward_cases(), ids='/'.join)
def test_grid_model_trains_on_tiny_input(cell, tmp_path, one_thread):
    """One loss + backward step on a 2x3x32x48 batch: the loss is finite and
    reaches the decode head's classifier."""
    path = Path(leaf_config_path(GRID_STUDY, *cell))
    cfg = Config.fromfile(str(path))
    k = cfg.num_classes
    model_cfg = copy.deepcopy(cfg.model)
    if 'class_counts' in model_cfg.decode_head.loss_decode:
        model_cfg.decode_head.loss_decode.class_counts = str(
            write_stats(tmp_path / 'stats.json', k))
    model_cfg.data_preprocessor.pop('size', None)
    model_cfg.data_preprocessor['size_divisor'] = 16
    torch.manual_seed(0)
    segmentor = MODELS.build(model_cfg)
    segmentor.train()
    rng = np.random.default_rng(0)
    data = dict(inputs=[], data_samples=[])
    for _ in range(2):
        data['inputs'].append(
            torch.from_numpy(rng.integers(0, 255, (3, 32, 48))).byte())
        label = rng.integers(0, k, (1, 32, 48))
        label[:, :4] = 255  # an ignored band
        sample = SegDataSample(
            gt_sem_seg=PixelData(data=torch.from_numpy(label)))
        sample.set_metainfo(dict(img_shape=(32, 48), ori_shape=(32, 48),
                                 pad_shape=(32, 48)))
        data['data_samples'].append(sample)
    data = segmentor.data_preprocessor(data, training=True)
    losses = segmentor.loss(data['inputs'], data['data_samples'])
    total = sum(v for n, v in losses.items() if 'loss' in n)
    assert torch.isfinite(total)
    total.backward()
    grad = segmentor.decode_head.conv_seg.weight.grad
    assert grad is not None and torch.isfinite(grad).all()
    assert grad.abs().sum() > 0
    # the grid's loss on the decode head; CE on the auxiliary head where
    # the spec keeps one (DeepLab), no auxiliary term for the U-Net family
    loss_name = segmentor.decode_head.loss_decode.loss_name
    assert loss_name.startswith('loss_') and f'decode.{loss_name}' in losses
    aux_terms = [n for n in losses if n.startswith('aux.')]
    if GRID_STUDY.models[cell[1]].aux == 'none':
        assert aux_terms == [] and not segmentor.with_auxiliary_head
    else:
        assert 'aux.loss_ce' in losses


def _fake_split(ds_cfg, root: Path):
    """Write one image + label where the data set looks for them."""
    lazy = DATASETS.build(dict(ds_cfg, data_root=str(root), lazy_init=True))
    img_dir = root / lazy.data_prefix['img_path'].replace(str(root), '')\
        .lstrip('/')
    seg_dir = root / lazy.data_prefix['seg_map_path'].replace(str(root), '')\
        .lstrip('/')
    img_dir.mkdir(parents=True, exist_ok=True)
    seg_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 56, 3)).astype(np.uint8)).save(
        img_dir / f'fake{lazy.img_suffix}')
    Image.fromarray(np.ones((40, 56), np.uint8)).save(
        seg_dir / f'fake{lazy.seg_map_suffix}')


@pytest.mark.parametrize('dataset', list(GRID_DATASETS))
def test_grid_datasets_build_with_fake_data_root(dataset, tmp_path):
    """The grid's dataloaders (= the data set base's, checked above) build
    their data sets from a fake data_root and run their pipelines."""
    cfg = _base_cfg(GRID_DATASETS[dataset].base)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        ds_cfg = copy.deepcopy(cfg[loader].dataset)
        root = tmp_path / loader
        _fake_split(ds_cfg, root)
        ds = DATASETS.build(dict(ds_cfg, data_root=str(root)))
        assert len(ds) == 1
        assert len(ds.metainfo['classes']) == cfg.num_classes
        item = ds[0]
        assert item['inputs'].shape[0] == 3
        labels = set(item['data_samples'].gt_sem_seg.data.unique().tolist())
        assert labels <= {1, 255} and labels


DROPIN_FILES = sorted(DROPIN.glob('*.py'))
MMSEG_CONFIG = ('deeplabv3plus/'
                'deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py')


def _unscoped(obj):
    if isinstance(obj, dict):
        return {k: _unscoped(v) for k, v in obj.items() if k != '_scope_'}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_unscoped(v) for v in obj)
    return obj


def test_dropin_one_per_loss():
    keys = {p.name.split('_')[0] for p in DROPIN_FILES}
    assert keys == set(GRID_LOSSES)


@pytest.mark.parametrize('path', DROPIN_FILES, ids=lambda p: p.stem)
def test_dropin_changes_only_the_loss(path, tmp_path):
    loss = path.name.split('_')[0]
    cfg = Config.fromfile(str(path))
    assert f"_base_ = 'mmseg::{MMSEG_CONFIG}'" in path.read_text()
    import mmseg
    original = Config.fromfile(
        str(Path(mmseg.__file__).parent / '.mim' / 'configs' / MMSEG_CONFIG))
    loss_cfg = dict(cfg.model.decode_head.loss_decode)
    assert loss_cfg['type'] == _base_cfg(
        GRID_LOSSES[loss].base).loss_decode['type']
    assert 'use_sigmoid' not in loss_cfg or loss == 'ce'
    # everything but the decode head's loss (and the plugin import) is
    # mmseg's config (which the mmseg:: scope tags with `_scope_`)
    for key in set(original) | set(cfg):
        if key in ('model', 'custom_imports'):
            continue
        assert _unscoped(cfg.get(key)) == original.get(key), key
    model = _unscoped(copy.deepcopy(cfg.model))
    ref = copy.deepcopy(original.model)
    model['decode_head'].pop('loss_decode')
    ref['decode_head'].pop('loss_decode')
    assert model == ref
    if 'class_counts' in loss_cfg:
        cfg.model.decode_head.loss_decode.class_counts = str(
            write_stats(tmp_path / 'stats.json', 19))
    with torch.device('meta'):
        segmentor = MODELS.build(cfg.model)
    assert type(segmentor.decode_head.loss_decode).__name__ == \
        loss_cfg['type']


def test_select_cells_globs():
    names = [p for p in GRID_FILES]

    def count(d, m, lo):
        return sum(1 for p in names if fnmatch.fnmatch(cell_of(p)[0], d)
                   and fnmatch.fnmatch(cell_of(p)[1], m)
                   and fnmatch.fnmatch(cell_of(p)[2], lo))

    base = [Cell(d, m, lo, '', 0) for d in GRID_DATASETS for m in GRID_MODELS
            for lo in GRID_LOSSES]

    def select(datasets=None, models=None, losses=None):
        return filter_cells(GRID_STUDY, base, datasets, models, losses)

    assert len(select()) == 260
    assert len(select(['camvid'], ['unet*'], ['c*'])) == count(
        'camvid', 'unet*', 'c*') == 6
    assert len(select(losses=['pat', 'ce'])) == 40
    assert len(select(datasets=['*'], models=['deeplab*'])) == 104
    with pytest.raises(ValueError, match='pta'):
        select(losses=['pta'])
    assert split_patterns(['ce,pat', ' cb* ']) == ['ce', 'pat', 'cb*']
    # a loss pattern may name variants of the sweep
    sweep = filter_cells(GRID_STUDY, GRID_STUDY_SWEEP, ['camvid'], ['unet'],
                         ['ldam:s5*'])
    assert [c.variant for c in sweep] == ['s5', 's5-drw']
