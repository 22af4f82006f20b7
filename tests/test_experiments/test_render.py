"""mmseg_longtail.experiments.render: the auxiliary-head choices, a study's
data base (carved training and selection lists, the report split), and the
CamVid CPU study's 27 rendered configs against their bases; every setting
builds and takes one optimiser step."""
import copy
import os.path as osp
from dataclasses import replace

import numpy as np
import pytest

from mmseg_longtail.experiments import Cell, load_study, plan_cells, run_name
from mmseg_longtail.experiments.render import data_base_text, leaf_config_text
from tests.conftest import REPO_ROOT
from tests.test_experiments.helpers import (CARVED_TRAIN_IMAGES,
                                            CARVED_TRAIN_PIXELS, COUNTED,
                                            LOSS_TYPES, OPTIONS, TAIL,
                                            camvid_study, fake_stems)


def _init():
    from mmengine.registry import init_default_scope

    import mmseg_longtail  # noqa: F401
    init_default_scope('mmseg')


# ------------------------------------------------------------ aux heads
def test_aux_choices_render_and_build(tmp_path):
    """'none' drops the auxiliary head, 'ce' keeps the base's CE head,
    'same' puts the decode head's loss (with its options and class counts)
    on it at aux_weight; the name says which."""
    from mmengine import Config
    text = (REPO_ROOT / 'configs/grid/paper_grid.py').read_text()
    old = "        size_divisor=16,\n        aux='none'),"
    spec = tmp_path / 'spec.py'
    cases = {'none': ('-noaux_', None),
             'ce': ('_fcn_', dict(type='CrossEntropyLoss', use_sigmoid=False,
                                  loss_weight=0.4)),
             'same': ('-auxsame_', 'LDAMLoss')}
    for aux, (piece, expected) in cases.items():
        extra = ', aux_weight=0.3' if aux == 'same' else ''
        spec.write_text(text.replace(
            old, f"        size_divisor=16,\n        aux='{aux}'{extra}),"))
        study = load_study(str(spec))
        cell = Cell('camvid', 'unet', 'ldam', 's5-drw', 0)
        assert piece in run_name(study, cell)
        ds, model, loss = (study.datasets['camvid'], study.models['unet'],
                           study.losses['ldam'])
        leaf = tmp_path / f'{aux}.py'
        leaf.write_text(leaf_config_text(
            study, ds, model, loss, loss.variant('s5-drw'), ds.base, None))
        cfg = Config.fromfile(str(leaf))
        head, auxh = cfg.model.decode_head, cfg.model.get('auxiliary_head')
        assert head.loss_decode.s == 5.0 and head.loss_decode.drw_start_iter
        if expected is None:
            assert auxh is None
        elif aux == 'ce':
            assert dict(auxh.loss_decode) == expected
            assert auxh.num_classes == cfg.num_classes
        else:
            want = dict(head.loss_decode, loss_weight=0.3)
            assert dict(auxh.loss_decode) == want
            assert auxh.loss_decode.class_counts == cfg.class_stats_file
        _train_step(cfg, tmp_path, aux)


def _train_step(cfg, tmp_path, aux):
    """Build the leaf's model (a small UNet) and take one loss step: 'none'
    has no auxiliary parameters or loss key, 'ce' an ``aux.loss_ce``,
    'same' the decode head's loss on the auxiliary head too."""
    import torch
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample

    from tests.test_configs.test_grid_configs import write_stats
    _init()
    k = cfg.num_classes
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.base_channels = 4  # the test only needs the wiring
    model_cfg.decode_head.update(in_channels=4, channels=4)
    if model_cfg.get('auxiliary_head'):
        model_cfg.auxiliary_head.update(in_channels=8, channels=4)
    stats = str(write_stats(tmp_path / 'stats.json', k))
    for head in (model_cfg.decode_head, model_cfg.get('auxiliary_head')):
        if head and 'class_counts' in head.loss_decode:
            head.loss_decode.class_counts = stats
    model_cfg.data_preprocessor.pop('size', None)
    model_cfg.data_preprocessor['size_divisor'] = 16
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.train()
    rng = np.random.default_rng(0)
    label = torch.from_numpy(rng.integers(0, k, (1, 32, 48)))
    sample = SegDataSample(gt_sem_seg=PixelData(data=label))
    sample.set_metainfo(dict(img_shape=(32, 48), ori_shape=(32, 48),
                             pad_shape=(32, 48)))
    data = model.data_preprocessor(dict(
        inputs=[torch.from_numpy(rng.integers(0, 255, (3, 32, 48))).byte()],
        data_samples=[sample]), training=True)
    losses = model.loss(data['inputs'], data['data_samples'])
    aux_keys = sorted(n for n in losses if n.startswith('aux.loss'))
    aux_params = [n for n, _ in model.named_parameters()
                  if n.startswith('auxiliary_head.')]
    if aux == 'none':
        assert aux_keys == [] and aux_params == []
    else:
        assert aux_keys == (['aux.loss_ce'] if aux == 'ce' else
                            ['aux.loss_ldam'])
        assert aux_params
    total = sum(v for n, v in losses.items() if 'loss' in n)
    assert torch.isfinite(total)
    total.backward()


# ------------------------------------------------------------ data base
def test_data_base_carves_train_and_reports_on_val():
    """The study's data base (as rendered for the spec's own data root):
    train on the carve's training list, validate (select) on its selection
    list with train's folders, test (report) on val."""
    st = camvid_study()
    ds = st.datasets['camvid']
    lists = ('/x/splits/camvid/train.txt', '/x/splits/camvid/selection.txt')
    text = data_base_text(st, ds, lists)
    assert f'_base_ = [{ds.base!r}]' in text
    assert f'data_root = {ds.data_root!r}' in text
    assert f'class_stats_file = {ds.class_stats_file!r}' in text
    assert ("train_dataloader = dict(dataset=dict(data_root=data_root, "
            "ann_file='/x/splits/camvid/train.txt'))") in text
    assert ("val_dataloader = dict(dataset=dict(data_root=data_root, "
            "data_prefix=dict(img_path='img_dir/train', "
            "seg_map_path='ann_dir/train'), "
            "ann_file='/x/splits/camvid/selection.txt'))") in text
    assert ("test_dataloader = dict(dataset=dict(data_root=data_root, "
            "data_prefix=dict(img_path='img_dir/val', "
            "seg_map_path='ann_dir/val')))") in text
    # the report split (test) also gets per-image mIoU and the bootstrap
    # interval; the selection split (val) stays cheap
    assert 'val_evaluator = dict(class_stats_file=class_stats_file)\n' in text
    assert ('test_evaluator = dict(class_stats_file=class_stats_file, '
            'per_image=True, bootstrap_samples=1000, bootstrap_seed=0)'
            ) in text
    off = data_base_text(replace(st, report_bootstrap=0), ds, lists)
    assert 'test_evaluator = dict(class_stats_file=class_stats_file)\n' in off


# ------------------------------------------------------ rendered configs
def test_rendered_configs(rendered):
    from mmengine.config import Config
    from mmseg.registry import DATASETS
    work, stats, plan, stems = rendered
    assert len(plan) == 27
    assert [e.cell for e in plan] == plan_cells(camvid_study())[0]
    data = str(work / 'camvid')
    splits = work / 'results' / 'splits' / 'camvid'
    schedule = Config.fromfile(REPO_ROOT / 'configs' / 'camvid_study' /
                               'schedule_cpu.py')
    # one config per setting, shared by its seeds (the launcher sets the
    # seed)
    by_setting = {}
    for e in plan:
        by_setting.setdefault((e.cell.loss, e.cell.variant), set()).add(
            e.config)
    assert len(by_setting) == 25
    assert all(len(v) == 1 for v in by_setting.values())
    for e in plan:
        cfg = Config.fromfile(e.config)
        lo, tag, seed = e.cell.loss, e.cell.variant, e.cell.seed
        piece = f'{lo}-{tag}' if tag else lo
        assert e.name == f'{piece}{TAIL}_seed{seed}'
        assert osp.basename(e.config) == f'{piece}{TAIL}.py'
        assert e.work_dir == str(work / e.name) and e.state == 'new'
        # the loss with its setting's options; counted losses get the
        # statistics
        loss = cfg.model.decode_head.loss_decode
        assert loss.type == LOSS_TYPES[lo]
        for k, v in OPTIONS[(lo, tag)].items():
            assert loss[k] == v, (e.name, k)
        if lo == 'ldam':
            assert (loss.drw_start_iter, loss.drw_beta) == (1920, 'median')
        if lo in ('cb', 'cbfocal'):
            assert loss.base == ('ce' if lo == 'cb' else 'focal')
            assert loss.get('count_type') == (
                'image' if tag == 'b0.9999-img' else 'pixel')
        assert (loss.get('class_counts') == str(stats)) == (lo in COUNTED)
        # no auxiliary head
        assert cfg.model.get('auxiliary_head') is None, e.name
        assert cfg.model.decode_head.num_classes == 11
        # train on the carve's training list, select on its selection
        # list (train's folders), report on val
        for split in ('train', 'val', 'test'):
            assert cfg[f'{split}_dataloader'].dataset.data_root == data
        train = cfg.train_dataloader.dataset
        assert train.ann_file == str(splits / 'train.txt')
        assert train.data_prefix.img_path == 'img_dir/train'
        val = cfg.val_dataloader.dataset
        assert val.ann_file == str(splits / 'selection.txt')
        assert (val.data_prefix.img_path, val.data_prefix.seg_map_path) == (
            'img_dir/train', 'ann_dir/train')
        test = cfg.test_dataloader.dataset
        assert not test.get('ann_file')
        assert (test.data_prefix.img_path, test.data_prefix.seg_map_path) == (
            'img_dir/val', 'ann_dir/val')
        assert cfg.val_evaluator.class_stats_file == str(stats)
        assert cfg.test_evaluator.class_stats_file == str(stats)
        assert cfg.crop_size == (144, 192)
        assert cfg.train_dataloader.batch_size == 8
        # the same schedule for every loss
        assert cfg.train_cfg == schedule.train_cfg
        assert cfg.optim_wrapper.optimizer == schedule.optimizer
        assert cfg.param_scheduler == schedule.param_scheduler
        assert cfg.default_hooks.checkpoint.interval == 600
        size = cfg.model.data_preprocessor.size
        assert tuple(size) == (144, 192)  # divisible by 16 (UNet)
        backbone = cfg.model.backbone
        assert backbone.type == 'UNet' and backbone.base_channels == 8
    data_base = (work / '_grid' / 'configs' / 'data_camvid.py').read_text()
    assert f'data_root = {data!r}' in data_base and str(stats) in data_base
    assert str(splits / 'selection.txt') in data_base

    # the data sets the dataloaders build read those lists
    _init()
    cfg = Config.fromfile(plan[0].config)

    def files(split):
        ds_cfg = cfg[f'{split}_dataloader'].dataset
        ds_cfg.pipeline = []
        ds = DATASETS.build(ds_cfg)
        return [osp.relpath(ds.get_data_info(i)['img_path'], data)
                for i in range(len(ds))]

    train, sel, test = files('train'), files('val'), files('test')
    assert len(train) == 266 and len(sel) == 101 and len(test) == 5
    assert sorted(sel) == [osp.join('img_dir', 'train', s + '.jpg')
                           for s in fake_stems('0006R0', 101)]
    assert not set(train) & set(sel)
    assert all(f.startswith(osp.join('img_dir', 'train', '')) for f in train)
    assert sorted(test) == [osp.join('img_dir', 'val', s + '.jpg')
                            for s in stems['val']]


def test_every_setting_trains_one_step(rendered):
    """Each of the 25 settings builds from its rendered config and takes
    one optimiser step on a tiny batch on the study's model (finite loss,
    weights change, no auxiliary head), with its options in the built
    loss."""
    import torch
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample
    _init()
    _, _, plan, _ = rendered
    torch.manual_seed(0)
    h, w = 32, 48
    inputs = [torch.randint(0, 256, (3, h, w)).float() for _ in range(2)]
    samples = []
    for i in range(2):
        s = SegDataSample()
        label = torch.randint(0, 11, (1, h, w))
        label[:, :4] = 255
        s.gt_sem_seg = PixelData(data=label)
        s.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w),
                            pad_shape=(h, w)))
        samples.append(s)
    median_beta = 1 - 1 / float(np.median(CARVED_TRAIN_PIXELS))
    seen = set()
    for e in plan:
        setting = (e.cell.loss, e.cell.variant)
        if setting in seen:
            continue
        seen.add(setting)
        cfg = Config.fromfile(e.config)
        cfg.model.data_preprocessor.size = (h, w)
        model = MODELS.build(cfg.model)
        assert not model.with_auxiliary_head, e.name
        loss = model.decode_head.loss_decode
        if e.cell.loss in COUNTED:
            kind = 'image' if e.cell.variant == 'b0.9999-img' else 'pixel'
            assert loss.class_counts.tolist() == (
                CARVED_TRAIN_IMAGES if kind == 'image' else
                CARVED_TRAIN_PIXELS), e.name
        if e.cell.loss in ('cb', 'cbfocal'):
            assert loss.beta == pytest.approx(
                median_beta if e.cell.variant == 'bmed' else 0.9999)
            # the effective-number weights of the counts (summing to C),
            # far from uniform with both settings
            counts = np.asarray(loss.class_counts, float)
            want = (1 - loss.beta) / (1 - loss.beta**counts)
            want *= len(want) / want.sum()
            assert loss.cb_weights.tolist() == pytest.approx(want.tolist(),
                                                             rel=1e-4)
            assert want.max() / want.min() > 1.5, e.name
        if e.cell.loss == 'ldam':
            assert loss.s == (1.0 if e.cell.variant == 's1-drw' else 5.0)
            assert loss.drw_beta == pytest.approx(median_beta)
            assert loss.deferred.start_iter == 1920
            drw = loss.deferred.weights
            assert drw.max() / drw.min() > 2  # not uniform
        model.train()
        optim = build_optim_wrapper(model, cfg.optim_wrapper)
        before = [p.detach().clone() for p in model.parameters()]
        log = model.train_step(dict(inputs=inputs, data_samples=samples),
                               optim)
        key = [k for k in log if k.startswith('decode.loss')]
        assert len(key) == 1, (e.name, list(log))
        assert not [k for k in log if k.startswith('aux')], (
            e.name, list(log))
        assert torch.isfinite(log['loss']), e.name
        assert any(not torch.equal(a, b)
                   for a, b in zip(before, model.parameters())), e.name
    assert seen == set(OPTIONS)
