"""mmseg_longtail.experiments.spec: sweeps expanded into settings, the
CamVid CPU study's spec and its full-resolution variant, and bad specs
refused naming the key."""
import os.path as osp
import re

import pytest

from mmseg_longtail.experiments import Carve, SpecError, load_study
from tests.conftest import REPO_ROOT
from tests.test_experiments.helpers import (BASES, COUNTED, DRW, OPTIONS, SPEC,
                                            SPEC_DIR, TAGS, TITLES,
                                            camvid_study, spec_rel)


# ------------------------------------------------------------ paper grid
def test_sweep_expansion_and_labels(grid):
    # the PAT paper's losses (the grid holds more): a sweep dict's lists or
    # a list of settings; a loss without a sweep has its base setting
    assert {lo: len(grid.losses[lo].variants) for lo in (
        'ce', 'focal', 'cb', 'cbfocal', 'bms', 'ldam', 'blv', 'pat')} == dict(
            ce=1, focal=3, cb=3, cbfocal=2, bms=2, ldam=6, blv=4, pat=3)
    assert grid.losses['ce'].variants[0].tag == ''
    blv = [v.tag for v in grid.losses['blv'].variants]
    # a dict sweep is the product of its lists, in order
    assert blv == ['sigma2-gaussian', 'sigma2-uniform', 'sigma4-gaussian',
                   'sigma4-uniform']
    assert grid.losses['blv'].variants[1].label == (
        'sigma=2, distribution=uniform')
    assert grid.losses['blv'].variants[1].options_dict == dict(
        sigma=2.0, distribution='uniform')
    assert grid.losses['ldam'].label(grid.losses['ldam'].variant(
        's5-drw')) == 'LDAM (s=5, DRW)'
    assert not grid.losses['pat'].counted and grid.losses['blv'].counted


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


# ------------------------------------------------------- CamVid CPU study
def test_camvid_spec():
    st = camvid_study()
    # one model: UNet-c8 without an auxiliary head
    assert list(st.models) == ['unet']
    unet = st.models['unet']
    assert (unet.title, unet.aux, unet.size_divisor) == ('UNet-c8', 'none',
                                                         16)
    assert unet.file_name == 'unet-s5-c8_fcn-noaux'
    assert spec_rel(unet.base) == osp.join('configs', 'camvid_study',
                                           'models', 'unet-s5-c8.py')
    # thirteen losses, every one but CE swept over two settings
    assert list(st.losses) == list(TAGS)
    for lo, loss in st.losses.items():
        assert [v.tag for v in loss.variants] == TAGS[lo], lo
        for v in loss.variants:
            assert v.options_dict == OPTIONS[(lo, v.tag)], (lo, v.tag)
        assert loss.counted == (lo in COUNTED), lo
        assert loss.title == TITLES[lo]
        assert spec_rel(loss.base) == osp.join(
            'configs', '_base_', 'losses', f'{BASES.get(lo, lo)}.py')
    ldam = st.losses['ldam']
    assert [ldam.label(v) for v in ldam.variants] == [
        'LDAM (s=1, DRW)', 'LDAM (s=5, DRW)']
    cb = st.losses['cb']
    assert cb.label(cb.variant('b0.9999-img')) == (
        'CB (beta=0.9999, image counts)')
    assert st.losses['ce'].label(st.losses['ce'].variants[0]) == 'CE'
    # seeds: 0 for every setting; the selected setting of every loss also
    # 1 and 2, CE (one setting, nothing to select) at once
    assert st.seeds == (0, ) and st.selected_seeds == (1, 2)
    assert st.extra_seeds == dict(ce=(1, 2)) and st.priority == ('ce', )
    assert all(st.seeds_of(lo) == (0, 1, 2) for lo in st.losses)

    # paths: written relative to the spec file. Compared as paths relative to
    # the root the spec module uses (this checkout, however it was reached),
    # never a resolved path against an unresolved one: the checkout or
    # ../shared may be reached through symlinks.
    ds = st.datasets['camvid']
    assert spec_rel(ds.data_root) == osp.join('..', 'shared', 'data',
                                              'camvid')
    # no statistics file in the spec and the data root moved: under the
    # work root, work_dirs/<name> of the current folder (the repository
    # root here)
    assert spec_rel(ds.class_stats_file) == osp.join(
        'work_dirs', 'camvid_cpu', 'class_stats', 'camvid.json')
    assert spec_rel(ds.base) == osp.join('configs', 'camvid_study',
                                         'camvid_144x192.py')
    assert spec_rel(st.results_dir) == osp.join('docs', 'results',
                                                'camvid_cpu')
    # the selection split is carved from train by sequence (101 of 367
    # frames); the report split is val
    assert (ds.selection, ds.report) == ('carve', 'val')
    assert ds.carve == Carve(101 / 367, r'^([0-9A-Za-z]+)_', 0)
    # the schedule: 2400 iterations, 8 evaluations, a checkpoint every 600;
    # LDAM's DRW over the last 20%
    from mmengine.config import Config
    sched = Config.fromfile(st.schedule_base)
    assert spec_rel(st.schedule_base) == osp.join('configs', 'camvid_study',
                                                  'schedule_cpu.py')
    assert st.schedule_name == '2400i'
    assert (sched.train_cfg.max_iters, sched.train_cfg.val_interval) == (
        2400, 200)
    assert sched.default_hooks.checkpoint.interval == 600
    assert sched.param_scheduler[0].end == 2400
    assert DRW['drw_start_iter'] == 0.8 * sched.train_cfg.max_iters
    assert (st.name, st.title) == ('camvid_cpu',
                                   'CamVid loss study (CPU budget)')
    assert spec_rel(st.page) == osp.join('docs', 'results', 'camvid.md')
    assert st.config_dir is None


def test_full_res_variant_uses_grid_bases(grid):
    from mmseg_longtail.experiments import plan_cells, run_name
    from tests.test_experiments.helpers import C
    st = camvid_study(full_res=True)
    default = camvid_study()
    # both grid models: UNet without an auxiliary head (as in the paper
    # grid), DeepLabV3+ with mmseg's CE auxiliary head
    assert list(st.models) == ['unet', 'deeplabv3plus']
    assert st.models['unet'] == grid.models['unet']
    assert st.models['deeplabv3plus'] == grid.models['deeplabv3plus']
    assert st.models['unet'].aux == 'none'
    assert st.models['unet'].file_name == 'unet-s5-d16_fcn-noaux'
    assert st.models['deeplabv3plus'].aux == 'ce'
    assert st.models['deeplabv3plus'].file_name == 'deeplabv3plus_r50-d8'
    assert st.schedule_name == '30k'
    assert spec_rel(st.datasets['camvid'].base) == osp.join(
        'configs', '_base_', 'datasets', 'camvid.py')
    assert st.datasets['camvid'].carve == default.datasets['camvid'].carve
    assert st.datasets['camvid'].report == 'val'
    assert spec_rel(st.work_root) == osp.join('work_dirs', 'camvid_full')
    assert spec_rel(st.results_dir) == osp.join('docs', 'results',
                                                'camvid_full')
    assert (st.name, st.variant) == ('camvid_full', 'full_res')
    # the same losses and settings; LDAM's DRW from iteration 24000 of 30k
    assert list(st.losses) == list(default.losses)
    for lo, loss in st.losses.items():
        assert [v.tag for v in loss.variants] == TAGS[lo]
        for v in loss.variants:
            want = dict(OPTIONS[(lo, v.tag)])
            if lo == 'ldam':
                want['drw_start_iter'] = 24000
            assert v.options_dict == want, (lo, v.tag)
    cells, pending = plan_cells(st)
    assert len(cells) == 25 * 2 + 2 * 2 and len(pending) == 12 * 2
    assert run_name(st, C('pat', 1, 'tau2', 'deeplabv3plus')) == (
        'pat-tau2_deeplabv3plus_r50-d8_1xb4-30k_camvid-360x480_seed1')
    assert run_name(st, C('ce', 0)) == (
        'ce_unet-s5-d16_fcn-noaux_1xb4-30k_camvid-360x480_seed0')


def test_bad_spec_fails_naming_the_key(tmp_path):
    spec = tmp_path / 'bad.py'
    # a copy elsewhere: the spec's own relative paths made absolute
    text = re.sub(r"(base=|_base_ = \[)'(?!mmseg_longtail::)",
                  lambda m: f"{m.group(1)}'{REPO_ROOT / SPEC_DIR}/",
                  (REPO_ROOT / SPEC).read_text())
    ldam_opts = "options=dict(drw_start_iter=1920, drw_beta='median'),"
    cases = [
        ("extra_seeds = dict(ce=[1, 2])",
         "extra_seeds = dict(ce=[1, 2], xx=[1])", SpecError,
         r"extra_seeds names losses \['xx'\]"),
        ("selected_seeds = [1, 2]", "selected_seeds = ['one']", SpecError,
         'selected_seeds must be a list of integers'),
        ("name='blv',", '', SpecError, r"losses.blv needs \['name'\]"),
        (ldam_opts, ldam_opts + ' scale=1,', SpecError,
         r"losses.ldam has unknown fields \['scale'\]"),
        ("tag='s5-drw', label=", "tag='s5-drw', lbl=", SpecError,
         r"losses.ldam.sweep\[1\] has unknown fields \['lbl'\]"),
        ("tag='s5-drw'", "tag='s1-drw'", SpecError,
         r"losses.ldam.sweep: variants share the tags \['s1-drw'\]"),
        ("sweep=dict(sigma=[2.0, 4.0])", "sweep=dict(sigma=[])", SpecError,
         'losses.blv.sweep.sigma: a sweep dict maps an option'),
        ('losses/pat.py', 'losses/pta.py', FileNotFoundError,
         'losses.pat.base'),
        ("aux='none'", "aux='no'", SpecError, 'models.unet.aux: one of'),
        ("aux='none'", "aux='none', aux_weight=0.2", SpecError,
         "models.unet.aux_weight is read only with aux='same'"),
        ("priority = ['ce']", "priority = ['ce', 'pta']", SpecError,
         r"priority names losses \['pta'\]"),
        ("seeds = [0]", "seeds = [0]\nselect_metric = 'mIoUU'", SpecError,
         'select_metric'),
        ("seeds = [0]", "seeds = [0]\nreport_bootstrap = -1", SpecError,
         'report_bootstrap must be an integer >= 0'),
        ("report='val'", "report='train'", SpecError,
         'datasets.camvid.report'),
        ("fraction=101 / 367", "fraction=367 / 101", SpecError,
         r'carve.fraction must lie in \(0, 1\)'),
        ("fraction=101 / 367, group=", "fraction=101 / 367, grp=", SpecError,
         r"datasets.camvid.selection.carve needs \['group'\]"),
        ("selection=dict(\n", "selection='train' or dict(\n", SpecError,
         r"datasets.camvid.selection: 'val' or dict\(carve=...\)"),
        ("page = ", "pages = 1\npage = ", SpecError,
         r"unknown keys \['pages'\]"),
    ]
    for old, new, exc, match in cases:
        assert text.count(old) == 1, old
        spec.write_text(text.replace(old, new))
        with pytest.raises(exc, match=match):
            load_study(str(spec))
    # an error in the full_res overrides shows with --full-res only
    old = 'losses=dict(ldam=dict(options=dict(drw_start_iter=24000))),'
    assert text.count(old) == 1
    spec.write_text(text.replace(old, old[:-3] + ', scale=1)),'))
    assert load_study(str(spec)).name == 'camvid_cpu'
    with pytest.raises(SpecError,
                       match=r"losses.ldam has unknown fields \['scale'\]"):
        load_study(str(spec), full_res=True)
    spec.write_text(text[:text.index('full_res = dict(')])
    assert load_study(str(spec)).name == 'camvid_cpu'
    with pytest.raises(SpecError, match='full_res'):
        load_study(str(spec), full_res=True)


def test_tiny_study_spec(grid):
    """The launcher tests' study: the tiny synthetic data (selection on
    val, report on test) and the paper grid's UNet entry; its runs carry
    the names the tests expect."""
    from mmseg_longtail.experiments import Cell, run_name
    from tests.test_experiments.helpers import TINY_STUDY, TINY_TAIL
    st = load_study(str(REPO_ROOT / TINY_STUDY))
    assert st.models['unet'] == grid.models['unet']
    ds = st.datasets['synthetic_tiny']
    assert (ds.selection, ds.report) == ('val', 'test')
    assert spec_rel(ds.base) == osp.join('tests', 'test_configs', 'data',
                                         'synthetic_tiny.py')
    assert run_name(st, Cell('synthetic_tiny', 'unet', 'ce', '', 0)) == (
        'ce' + TINY_TAIL)
    assert [v.tag for v in st.losses['pat'].variants] == [
        'tau1', 'tau2', 'tau5']
