"""Unit tests of the experiment layer: spec expansion, the carve, run
records and the selection protocol."""
import json

import pytest

from mmseg_longtail.experiments import (Carve, Cell, RecordError, RunRecord,
                                        SplitMetrics, load_study, plan_cells,
                                        run_name, select_variants,
                                        sweep_cells)
from mmseg_longtail.experiments.selection import report_selected
from mmseg_longtail.experiments.splits import carve, group_files
from tests.conftest import REPO_ROOT

GRID = str(REPO_ROOT / 'configs' / 'grid' / 'paper_grid.py')


@pytest.fixture(scope='module')
def grid():
    return load_study(GRID)


# ----------------------------------------------------------------- spec
def test_sweep_expansion_and_names(grid):
    n_variants = sum(len(lo.variants) for lo in grid.losses.values())
    assert n_variants == 1 + 3 + 3 + 2 + 2 + 6 + 4 + 3
    cells = sweep_cells(grid)
    assert len(cells) == n_variants * 5 * 4 and len(set(cells)) == len(cells)
    blv = [v.tag for v in grid.losses['blv'].variants]
    # a dict sweep is the product of its lists, in order
    assert blv == ['sigma2-gaussian', 'sigma2-uniform', 'sigma4-gaussian',
                   'sigma4-uniform']
    assert grid.losses['blv'].variants[1].label == (
        'sigma=2, distribution=uniform')
    assert grid.losses['blv'].variants[1].options_dict == dict(
        sigma=2.0, distribution='uniform')
    cell = Cell('camvid', 'unet', 'ldam', 's5-drw', 0)
    assert run_name(grid, cell) == (
        'ldam-s5-drw_unet-s5-d16_fcn-noaux_1xb4-30k_camvid-360x480_seed0')
    assert grid.losses['ldam'].label(grid.losses['ldam'].variant(
        's5-drw')) == 'LDAM (s=5, DRW)'
    assert not grid.losses['pat'].counted and grid.losses['blv'].counted


def test_plain_runs_are_named_only_where_val_is_the_selection(grid):
    from mmseg_longtail.experiments.collect import _names
    names = _names(grid)
    # a tools/train.py run of PAT's leaf config is its tau=2 setting, seed 0
    assert names['pat_unet-s5-d16_fcn-noaux_1xb4-30k_camvid-360x480'] == Cell(
        'camvid', 'unet', 'pat', 'tau2', 0)
    # Cityscapes carves its selection split: a plain run validated on the
    # base's val (the report split there) is not taken as a sweep run
    assert 'pat_unet-s5-d16_fcn-noaux_1xb2-30k_cityscapes-256x512' not in names
    assert not any(c.dataset in ('cityscapes', 'nyuv2')
                   for c in names.values())


def test_further_seeds_wait_for_the_sweep(grid):
    cells, pending = plan_cells(grid)
    # CE has one setting: its further seeds are planned at once
    assert Cell('pet', 'unet', 'ce', '', 2) in cells
    assert ('pet', 'unet', 'pat') in pending
    assert not any(c.loss == 'pat' and c.seed > 0 for c in cells)
    cells, pending = plan_cells(grid, {('pet', 'unet', 'pat'): 'tau5'})
    assert ('pet', 'unet', 'pat') not in pending
    extra = [c for c in cells if c.group == ('pet', 'unet', 'pat')
             and c.seed > 0]
    assert extra == [Cell('pet', 'unet', 'pat', 'tau5', 1),
                     Cell('pet', 'unet', 'pat', 'tau5', 2)]
    assert cells.index(extra[0]) > max(
        cells.index(c) for c in sweep_cells(grid))


def test_sweep_spec_errors(tmp_path):
    text = (REPO_ROOT / 'configs/grid/paper_grid.py').read_text()
    spec = tmp_path / 'bad.py'
    for old, new, match in [
            ("sweep=dict(gamma=[1.0, 2.0, 5.0])", "sweep=dict(gamma=2.0)",
             r'losses.focal.sweep.gamma: a sweep dict maps'),
            ("sweep=dict(tau=[0.5, 1.0])", "sweep=[dict(tau=0.5), "
             "dict(options=dict(tau=1.0), tag='tau0p5')]",
             r"share the tags \['tau0p5'\]"),
            ("tag='s1', label='s=1'", "tag='s1', label='s=1', x=1",
             r"losses.ldam.sweep\[0\] has unknown fields \['x'\]"),
    ]:
        assert old in text, old
        spec.write_text(text.replace(old, new))
        with pytest.raises(KeyError, match=match):
            load_study(str(spec))


@pytest.mark.parametrize('aux,extra,match', [
    ("'dice'", '', r"models.unet.aux: one of \['ce', 'none', 'same'\], got "
     "'dice'"),
    ("'none'", ', aux_weight=0.5', r"models.unet.aux_weight is read only "
     "with aux='same'"),
    ("'same'", ', aux_weight=0', r'models.unet.aux_weight must be positive'),
])
def test_aux_spec_errors(tmp_path, aux, extra, match):
    text = (REPO_ROOT / 'configs/grid/paper_grid.py').read_text()
    old = "        size_divisor=16,\n        aux='none'),"
    assert old in text
    spec = tmp_path / 'bad.py'
    spec.write_text(text.replace(
        old, f"        size_divisor=16,\n        aux={aux}{extra}),"))
    with pytest.raises(KeyError, match=match):
        load_study(str(spec))


def test_aux_choices_render_and_build(tmp_path):
    """'none' drops the auxiliary head, 'ce' keeps the base's CE head,
    'same' puts the decode head's loss (with its options and class counts)
    on it at aux_weight; the name says which."""
    from mmengine import Config

    from mmseg_longtail.experiments.render import leaf_config_text
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
    import copy

    import numpy as np
    import torch
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample

    from mmengine.registry import init_default_scope

    from tests.test_configs.test_grid_configs import write_stats
    init_default_scope('mmseg')
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


# ---------------------------------------------------------------- carve
def test_carve_is_deterministic_disjoint_and_keeps_groups():
    stems = [f'{seq}_{i:04d}' for seq, n in (('A', 62), ('B', 101),
                                             ('C', 204), ('D', 30))
             for i in range(n)]
    spec = Carve(fraction=0.15, group=r'^([^_]+)_', seed=0)
    train, sel = carve(stems, spec)
    assert carve(list(reversed(stems)), spec) == (train, sel)
    assert not set(train) & set(sel)
    assert sorted(train + sel) == sorted(stems)
    # whole sequences only, as close to 15% of 397 (59.55) as sets allow:
    # A (62) beats D (30), A+D (92), B (101)
    assert {s.split('_')[0] for s in sel} == {'A'}
    assert not {s.split('_')[0] for s in sel} & {
        s.split('_')[0] for s in train}
    # another seed may pick another set of the same quality, never a split
    # sequence
    for seed in range(5):
        tr, se = carve(stems, Carve(0.5, r'^([^_]+)_', seed))
        groups = group_files(se, r'^([^_]+)_')
        assert all(len(v) == len([s for s in stems if s.startswith(k)])
                   for k, v in groups.items())
        assert abs(len(se) - 0.5 * len(stems)) <= 30
    with pytest.raises(ValueError, match='does not match'):
        carve(stems + ['nounderscore'], spec)
    with pytest.raises(ValueError, match='at least two'):
        carve(['A_1', 'A_2'], spec)


def test_carve_of_the_real_camvid_train_split(camvid_root):
    stems = sorted(p.stem for p in (camvid_root / 'ann_dir' / 'train'
                                    ).glob('*.png'))
    train, sel = carve(stems, Carve(0.15, r'^([^_]+)_', 0))
    # sequences 0001TP (62), 0006R0 (101), 0016E5 (204): 0001TP is the
    # closest whole-sequence set to 15% of 367
    assert len(sel) == 62 and all(s.startswith('0001TP') for s in sel)
    assert len(train) == 305


# -------------------------------------------------------------- records
def _record(cell, sel, rep, study='s'):
    return RunRecord(
        study=study, name=f'r{cell.loss}{cell.variant}{cell.seed}',
        cell=cell.to_dict(), options={}, iters=10,
        selection=SplitMetrics('selection', dict(mIoU=sel, mIoU_tail=rep)),
        report=SplitMetrics('report', dict(mIoU=rep, mIoU_tail=sel)))


def test_record_round_trip_and_bad_records(tmp_path):
    rec = _record(Cell('d', 'm', 'pat', 'tau1', 3), 40.0, 30.0)
    rec.curve = [dict(iter=5, mIoU=20.0)]
    path = rec.save(str(tmp_path))
    back = RunRecord.load(path)
    assert back == rec and back.selection.summary['mIoU'] == 40.0
    raw = json.loads(open(path).read())
    assert raw['kind'] == 'mmseg_longtail.run_record' and raw['version'] == 1
    bad = tmp_path / 'bad.json'
    for text, match in [
            (open(path).read()[:50], 'unreadable run record'),
            (json.dumps(dict(raw, version=9)), 'version 9'),
            (json.dumps(dict(raw, kind='other')), 'not a run record'),
            (json.dumps({k: v for k, v in raw.items() if k != 'report'}),
             r"lacks \['report'\]"),
            (json.dumps(dict(raw, selection=dict(x=1))), 'malformed'),
    ]:
        bad.write_text(text)
        with pytest.raises(RecordError, match=rf'bad\.json: .*{match}'):
            RunRecord.load(str(bad))


# ------------------------------------------------------------ selection
def test_selection_reads_only_the_selection_split(grid):
    d, m = 'camvid', 'unet'
    recs = {}
    # tau5 is best on the selection split, tau1 on the report split
    for seed, (s1, s2, s5) in enumerate(((40, 45, 50), (42, 44, 48))):
        for tag, sel, rep in (('tau1', s1, 90.0), ('tau2', s2, 10.0),
                              ('tau5', s5, 20.0 + seed)):
            c = Cell(d, m, 'pat', tag, seed)
            recs[c] = _record(c, float(sel), rep)
    # a further seed of the selected variant: reported, not selected on
    c = Cell(d, m, 'pat', 'tau5', 2)
    recs[c] = _record(c, 0.0, 25.0)
    sel = select_variants(grid, recs)[(d, m, 'pat')]
    # the grid's sweep seeds are [0]: only seed 0 is compared (seed 1 of
    # the other variants is ignored), and the sweep is complete
    assert sel.variant == 'tau5' and sel.scores == dict(
        tau1=40.0, tau2=45.0, tau5=50.0)
    assert sel.complete
    rep = report_selected(grid, recs, {(d, m, 'pat'): sel})[(d, m, 'pat')]
    assert rep.seeds == [0, 1, 2] and rep.values('mIoU') == [20.0, 21.0,
                                                             25.0]
    assert rep.label == 'PAT (tau=5)'
    # the tail option: mIoU_tail of the selection split (= report mIoU in
    # these records by construction) picks tau1
    assert select_variants(grid, recs, 'mIoU_tail')[
        (d, m, 'pat')].variant == 'tau1'
