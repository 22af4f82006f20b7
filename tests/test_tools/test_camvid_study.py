"""The CamVid study (configs/camvid_study/): the spec (one model, every loss
swept over two settings, selection carved from train, report on val), its
run order and pending groups, the carve and the rendered configs (every
setting builds and trains one step), the results page from hand-made run
records, and a smoke run of the reproduce command on the real CamVid
files."""
import json
import math
import os.path as osp
import re
import statistics
from dataclasses import replace
from pathlib import Path

import pytest

from mmseg_longtail.experiments import (Carve, Cell, RunRecord, SpecError,
                                        SplitMetrics, filter_cells,
                                        load_study, plan_cells, run_name)
from mmseg_longtail.experiments.launch import make_plan
from mmseg_longtail.experiments.page import (BEYOND_NOISE, WITHIN_NOISE,
                                             compare_with_reference,
                                             noise_mark, seed_noise)
from mmseg_longtail.experiments.render import data_base_text
from mmseg_longtail.experiments.selection import Reported
from mmseg_longtail.experiments.spec import REPO_ROOT as SPEC_REPO_ROOT
from tests.conftest import CAMVID_TRAIN_PIXELS, REPO_ROOT, run_tool

SPEC = 'configs/camvid_study/study_cpu.py'
SPEC_DIR = 'configs/camvid_study'
CLASSES = ['Sky', 'Building', 'Pole', 'Road', 'Pavement', 'Tree',
           'SignSymbol', 'Fence', 'Car', 'Pedestrian', 'Bicyclist']
LOSS_TYPES = dict(ce='CrossEntropyLoss', focal='SoftmaxFocalLoss',
                  cb='ClassBalancedLoss', cbfocal='ClassBalancedLoss',
                  bms='BalancedSoftmaxLoss', ldam='LDAMLoss',
                  blv='BLVLoss', pat='PATLoss')
COUNTED = {'cb', 'cbfocal', 'bms', 'ldam', 'blv'}
# the settings of each loss, in the spec's order (CE has no sweep)
TAGS = dict(ce=[''], focal=['gamma1', 'gamma2'],
            cb=['bmed', 'b0.9999-img'], cbfocal=['bmed', 'b0.9999-img'],
            bms=['tau0p5', 'tau1'], ldam=['s1-drw', 's5-drw'],
            blv=['sigma2', 'sigma4'], pat=['tau1', 'tau2'])
# the options each setting sets on its loss base's loss_decode
DRW = dict(drw_start_iter=1920, drw_beta='median')
OPTIONS = {
    ('ce', ''): {},
    ('focal', 'gamma1'): dict(gamma=1.0),
    ('focal', 'gamma2'): dict(gamma=2.0),
    ('cb', 'bmed'): dict(beta='median', count_type='pixel'),
    ('cb', 'b0.9999-img'): dict(beta=0.9999, count_type='image'),
    ('cbfocal', 'bmed'): dict(beta='median', count_type='pixel'),
    ('cbfocal', 'b0.9999-img'): dict(beta=0.9999, count_type='image'),
    ('bms', 'tau0p5'): dict(tau=0.5),
    ('bms', 'tau1'): dict(tau=1.0),
    ('ldam', 's1-drw'): dict(DRW, s=1.0),
    ('ldam', 's5-drw'): dict(DRW, s=5.0),
    ('blv', 'sigma2'): dict(sigma=2.0),
    ('blv', 'sigma4'): dict(sigma=4.0),
    ('pat', 'tau1'): dict(tau=1.0),
    ('pat', 'tau2'): dict(tau=2.0),
}
TITLES = dict(ce='CE', focal='Focal', cb='CB', cbfocal='CBFocal', bms='BMS',
              ldam='LDAM', blv='BLV', pat='PAT')
# the name pieces of the CPU study's runs: UNet-c8 without an auxiliary
# head, batch 8, 2400 iterations, 144x192 crops
TAIL = '_unet-s5-c8_fcn-noaux_1xb8-2400i_camvid-144x192'
# CamVid's training sequences (the shared copy: 367 frames); the carve
# moves sequence 0006R0 (101 frames) to the selection split
SEQUENCE_SIZES = {'0001TP': 62, '0006R0': 101, '0016E5': 204}
# class statistics of the 266 training frames left after the carve (the
# shared copy's 367 minus the 101 of 0006R0; checked against the label
# files in the smoke test)
CARVED_TRAIN_PIXELS = [7142823, 12871282, 439457, 13859719, 2434739,
                       3089374, 447488, 581520, 2664876, 347576, 172804]
CARVED_TRAIN_IMAGES = [265, 266, 265, 266, 266, 222, 262, 129, 265, 249, 187]


def study(**kw):
    return load_study(str(REPO_ROOT / SPEC), **kw)


def spec_rel(path: str) -> str:
    """``path`` relative to the repository root of the spec module, which
    must be this checkout (``samefile``: also through symlinks)."""
    assert osp.samefile(SPEC_REPO_ROOT, REPO_ROOT)
    return osp.relpath(path, SPEC_REPO_ROOT)


def _stats_file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(
        classes=CLASSES, ignore_index=255, num_images=266,
        pixel_counts=CARVED_TRAIN_PIXELS,
        image_counts=CARVED_TRAIN_IMAGES)))
    return path


def _fake_stems(sequence: str, n: int) -> list:
    """CamVid-like frame stems of one sequence (``<sequence>_<frame>``)."""
    frame = 'f{:05d}' if sequence == '0006R0' else '{:06d}'
    return [f'{sequence}_' + frame.format(930 + 30 * i) for i in range(n)]


def _fake_camvid(root: Path) -> dict:
    """A CamVid layout of empty files with the shared copy's training
    sequences and sizes (and 5 val frames): what the carve and the data
    sets read. Returns split -> stems."""
    stems = dict(train=[s for seq, n in SEQUENCE_SIZES.items()
                        for s in _fake_stems(seq, n)],
                 val=_fake_stems('0016E5', 5))
    for split, names in stems.items():
        for sub, suffix in (('img_dir', '.jpg'), ('ann_dir', '.png')):
            folder = root / sub / split
            folder.mkdir(parents=True, exist_ok=True)
            for s in names:
                (folder / (s + suffix)).touch()
    return stems


# ------------------------------------------------------------------ spec
def C(loss, seed, variant='', model='unet'):
    return Cell('camvid', model, loss, variant, seed)


def test_spec_cells_and_order():
    st = study()
    # one model: UNet-c8 without an auxiliary head
    assert list(st.models) == ['unet']
    unet = st.models['unet']
    assert (unet.title, unet.aux, unet.size_divisor) == ('UNet-c8', 'none',
                                                         16)
    assert unet.file_name == 'unet-s5-c8_fcn-noaux'
    assert spec_rel(unet.base) == osp.join('configs', 'camvid_study',
                                           'models', 'unet-s5-c8.py')
    # eight losses, every one but CE swept over two settings
    assert list(st.losses) == list(TAGS)
    for lo, loss in st.losses.items():
        assert [v.tag for v in loss.variants] == TAGS[lo], lo
        for v in loss.variants:
            assert v.options_dict == OPTIONS[(lo, v.tag)], (lo, v.tag)
        assert loss.counted == (lo in COUNTED), lo
        assert loss.title == TITLES[lo]
        assert spec_rel(loss.base) == osp.join('configs', '_base_',
                                               'losses', f'{lo}.py')
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

    cells, pending = plan_cells(st)
    # the 15 settings at seed 0 (CE first, then the spec's order), then
    # CE's seeds 1 and 2; the 7 swept losses wait for their sweep
    sweep = [C(lo, 0, t) for lo in TAGS for t in TAGS[lo]]
    assert len(sweep) == 15
    assert cells == sweep + [C('ce', 1), C('ce', 2)]
    assert len(cells) == 17 == len(set(cells))
    assert pending == [('camvid', 'unet', lo) for lo in TAGS if lo != 'ce']
    # once a loss's setting is selected its seeds 1 and 2 are planned too,
    # after the sweep, seed by seed
    cells, pending = plan_cells(st, {('camvid', 'unet', 'pat'): 'tau2'})
    assert cells == sweep + [C('ce', 1), C('pat', 1, 'tau2'), C('ce', 2),
                             C('pat', 2, 'tau2')]
    assert ('camvid', 'unet', 'pat') not in pending and len(pending) == 6
    chosen = {('camvid', 'unet', lo): TAGS[lo][-1] for lo in TAGS
              if lo != 'ce'}
    cells, pending = plan_cells(st, chosen)
    assert pending == [] and len(cells) == 15 + 2 * 8 == 31
    assert cells[15:] == [C(lo, s, TAGS[lo][-1]) for s in (1, 2)
                          for lo in TAGS]
    # selection of cells by globs: a loss key or <loss>:<tag>
    assert filter_cells(st, cells, losses=['ldam:s5*'], seeds=[0]) == [
        C('ldam', 0, 's5-drw')]
    assert filter_cells(st, cells, losses=['c*'], seeds=[2]) == [
        C('ce', 2), C('cb', 2, 'b0.9999-img'),
        C('cbfocal', 2, 'b0.9999-img')]
    assert len(filter_cells(st, cells, losses=['ldam'])) == 4
    for axis, pattern in (('models', 'deeplab*'), ('losses', 'cb_median'),
                          ('losses', 'ldam_s1')):
        with pytest.raises(ValueError, match=rf"{re.escape(repr(pattern))} "
                           'matches none'):
            filter_cells(st, cells, **{axis: [pattern]})

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
    # names
    assert run_name(st, C('ce', 0)) == f'ce{TAIL}_seed0'
    assert run_name(st, C('ldam', 0, 's5-drw')) == f'ldam-s5-drw{TAIL}_seed0'
    assert run_name(st, C('cb', 2, 'b0.9999-img')) == (
        f'cb-b0.9999-img{TAIL}_seed2')
    assert run_name(st, C('bms', 0, 'tau0p5')) == f'bms-tau0p5{TAIL}_seed0'
    assert run_name(st, C('pat', 1, 'tau2')) == f'pat-tau2{TAIL}_seed1'
    assert (st.name, st.title) == ('camvid_cpu',
                                   'CamVid loss study (CPU budget)')
    assert spec_rel(st.page) == osp.join('docs', 'results', 'camvid.md')
    assert st.config_dir is None


def test_data_base_carves_train_and_reports_on_val():
    """The study's data base (as rendered for the spec's own data root):
    train on the carve's training list, validate (select) on its selection
    list with train's folders, test (report) on val."""
    st = study()
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


def test_full_res_variant_uses_grid_bases():
    st = study(full_res=True)
    default = study()
    grid = load_study(str(REPO_ROOT / 'configs/grid/paper_grid.py'))
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
    assert len(cells) == 15 * 2 + 2 * 2 and len(pending) == 7 * 2
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


def test_dry_run_plan_writes_nothing(tmp_path):
    work, results = tmp_path / 'study', tmp_path / 'results'
    common = ['--work-root', work, '--results-dir', results, '--dry-run']
    out = run_tool(['tools/grid.py', '--study', SPEC] + common).stdout
    assert '17 cells selected' in out
    assert ('7 (data set, model, loss) groups wait for their sweep before '
            'their further seeds are planned') in out
    keys = re.findall(r'^\s+\d+ (camvid/\S+)\s+new\s+run', out, re.M)
    assert keys == [C(lo, 0, t).key for lo in TAGS for t in TAGS[lo]] + [
        'camvid/unet/ce/seed1', 'camvid/unet/ce/seed2']
    cmds = [ln for ln in out.splitlines() if 'tools/train.py' in ln]
    assert len(cmds) == 17 and all('--resume' in c for c in cmds)
    assert str(work / f'cb-b0.9999-img{TAIL}_seed0') in out
    assert 'randomness.seed=2' in cmds[-1]
    assert 'class statistics (camvid): ' in out
    assert 'would write it' in out
    # a swept loss: its two settings at seed 0, its further seeds wait
    out = run_tool(['tools/grid.py', '--study', SPEC, '--losses', 'pat']
                   + common).stdout
    assert '2 cells selected' in out
    keys = re.findall(r'^\s+\d+ (camvid/\S+)\s+new\s+run', out, re.M)
    assert keys == ['camvid/unet/pat:tau1/seed0', 'camvid/unet/pat:tau2/seed0']
    assert ('1 (data set, model, loss) groups wait for their sweep before '
            'their further seeds are planned: camvid/unet/pat') in out
    assert str(work / f'pat-tau2{TAIL}_seed0') in out
    # one setting by its tag
    out = run_tool(['tools/grid.py', '--study', SPEC, '--losses', 'ldam:s5*']
                   + common).stdout
    assert '1 cells selected' in out
    assert str(work / f'ldam-s5-drw{TAIL}_seed0') in out
    assert 'camvid/unet/ldam' in out and 'wait for their sweep' in out
    # CE needs no selection: its three seeds at once, nothing waits
    out = run_tool(['tools/grid.py', '--study', SPEC, '--losses', 'ce']
                   + common).stdout
    assert '3 cells selected' in out
    keys = re.findall(r'^\s+\d+ (camvid/\S+)\s+new\s+run', out, re.M)
    assert keys == [f'camvid/unet/ce/seed{s}' for s in (0, 1, 2)]
    assert 'wait for their sweep' not in out
    assert not work.exists() and not results.exists()
    # --full-res: both grid models, the 30k names
    out = run_tool(['tools/grid.py', '--study', SPEC, '--full-res',
                    '--losses', 'ce,ldam'] + common).stdout
    assert '10 cells selected' in out
    keys = re.findall(r'^\s+\d+ (camvid/\S+)\s+new\s+run', out, re.M)
    assert keys == [C(lo, 0, t, m).key for lo in ('ce', 'ldam')
                    for t in TAGS[lo] for m in ('unet', 'deeplabv3plus')] + [
        C('ce', s, '', m).key for s in (1, 2)
        for m in ('unet', 'deeplabv3plus')]
    assert '2 (data set, model, loss) groups wait for their sweep' in out
    assert 'ce_unet-s5-d16_fcn-noaux_1xb4-30k_camvid-360x480_seed0' in out
    assert ('ldam-s5-drw_deeplabv3plus_r50-d8_1xb4-30k_camvid-360x480_seed0'
            in out)
    assert not work.exists() and not results.exists()
    proc = run_tool(['tools/grid.py', '--study', SPEC, '--data-config',
                     'x.py', '--datasets', 'camvid', '--dry-run'],
                    check=False)
    assert proc.returncode != 0 and '--data-config replaces' in proc.stdout


# --------------------------------------------------------------- configs
@pytest.fixture(scope='module')
def rendered(tmp_path_factory):
    """The 17 rendered configs of the study (no training) on a CamVid
    layout of empty files with the real training sequences, with a stats
    file holding the counts of the carved training split."""
    work = tmp_path_factory.mktemp('study')
    data = work / 'camvid'
    stems = _fake_camvid(data)
    st = study(work_root=str(work), results_dir=str(work / 'results'),
               data_root=str(data))
    stats = _stats_file(Path(st.datasets['camvid'].class_stats_file))
    return work, stats, make_plan(st), stems


def test_carve_by_sequence(rendered):
    """Rendering the study carves train once: sequence 0006R0 (101 frames)
    is the selection split, the other 266 frames train; the lists go to the
    results folder."""
    work, _, _, stems = rendered
    folder = work / 'results' / 'splits' / 'camvid'
    train = (folder / 'train.txt').read_text().split()
    selection = (folder / 'selection.txt').read_text().split()
    assert len(selection) == 101 and len(train) == 266
    assert all(s.startswith('0006R0_') for s in selection)
    assert not any(s.startswith('0006R0_') for s in train)
    assert not set(train) & set(selection)
    assert sorted(train + selection) == sorted(stems['train'])
    assert selection == sorted(_fake_stems('0006R0', 101))


def test_rendered_configs(rendered):
    from mmengine.config import Config
    work, stats, plan, stems = rendered
    assert len(plan) == 17
    assert [e.cell for e in plan] == plan_cells(study())[0]
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
    assert len(by_setting) == 15
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
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS

    import mmseg_longtail  # noqa: F401
    init_default_scope('mmseg')
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
                           for s in _fake_stems('0006R0', 101)]
    assert not set(train) & set(sel)
    assert all(f.startswith(osp.join('img_dir', 'train', '')) for f in train)
    assert sorted(test) == [osp.join('img_dir', 'val', s + '.jpg')
                            for s in stems['val']]


def test_every_setting_trains_one_step(rendered):
    """Each of the 15 settings builds from its rendered config and takes
    one optimiser step on a tiny batch on the study's model (finite loss,
    weights change, no auxiliary head), with its options in the built
    loss."""
    import numpy as np
    import torch
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample

    import mmseg_longtail  # noqa: F401
    init_default_scope('mmseg')
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


# ------------------------------------------------------------------ page
def _curve(miou, spread=0.5, n=8):
    """A validation curve of ``n`` evaluations every 300 iterations, its
    last three within ``spread`` (n < 6: too short to judge)."""
    values = [miou - 20 + 3 * i for i in range(n - 3)] + [
        miou - spread, miou - spread / 2, miou]
    return [dict(iter=300 * (i + 1), mIoU=v, mIoU_tail=v / 2)
            for i, v in enumerate(values[-n:])]


def _fake_record(results: Path, st, cell, miou, tail, per_class,
                 wall=300.0, sel=None, curve=None):
    """A committed run record of a finished run; ``sel``: its selection
    mIoU when it differs from the report's."""
    summary = dict(mIoU=miou, aAcc=80.0, mAcc=50.0, mDice=miou + 10,
                   DiceErr=1 - (miou + 10) / 100, mIoU_head=70.0,
                   mIoU_body=40.0, mIoU_tail=tail)
    sel_summary = dict(summary, mIoU=miou if sel is None else sel)
    groups = dict(head=[0, 1, 3, 5], body=[4, 6, 8], tail=[2, 7, 9, 10])
    loss = st.losses[cell.loss]
    RunRecord(
        study=st.name, name=run_name(st, cell), cell=cell.to_dict(),
        options=loss.variant(cell.variant).options_dict, iters=2400,
        selection=SplitMetrics('selection', sel_summary, per_class, 2400),
        report=SplitMetrics('report', dict(summary), per_class, None),
        classes=CLASSES, groups=groups, train_counts=CARVED_TRAIN_PIXELS,
        curve=_curve(sel_summary['mIoU']) if curve is None else curve,
        wall_s=wall, train_s_per_iter=0.5).save(str(results))


def _fake_study_records(results: Path, st) -> None:
    """Records of 10 finished runs: CE with three seeds; both Focal and BMS
    settings, the report split ranking them the other way round from the
    selection split; BMS's chosen setting with a second seed; one PAT
    setting; CB on image counts with CE's numbers."""
    iou = [float(i) for i in range(11)]
    _fake_record(results, st, C('ce', 0), 40.0, 10.0, iou)
    _fake_record(results, st, C('ce', 1), 42.0, 12.0,
                 [v + 2 for v in iou], wall=500.0)
    _fake_record(results, st, C('ce', 2), 41.0, 11.0, [v + 1 for v in iou])
    # gamma=2 has not converged (its last three evaluations span 3 points)
    _fake_record(results, st, C('focal', 0, 'gamma1'), 41.5, 11.0, iou,
                 sel=45.0)
    _fake_record(results, st, C('focal', 0, 'gamma2'), 43.0, 11.0, iou,
                 sel=44.0, curve=_curve(44.0, spread=3.0))
    # seed 1 of tau=0.5 is no sweep run: its selection number (47) must
    # not enter the choice
    _fake_record(results, st, C('bms', 0, 'tau0p5'), 50.0, 30.0, iou)
    _fake_record(results, st, C('bms', 0, 'tau1'), 52.0, 30.0, iou,
                 sel=48.0)
    _fake_record(results, st, C('bms', 1, 'tau0p5'), 49.0, 29.0, iou,
                 sel=47.0)
    _fake_record(results, st, C('pat', 0, 'tau1'), 44.0, 20.0, iou)
    # a curve too short to judge convergence
    _fake_record(results, st, C('cb', 0, 'b0.9999-img'), 40.0, 10.0, iou,
                 curve=[dict(iter=1200, mIoU=20.0),
                        dict(iter=2400, mIoU=40.0)])


def _raw_records(results: Path) -> list:
    return [json.loads(p.read_text())
            for p in sorted((results / 'runs').glob('*.json'))]


def _expected_selection(st, raw: list) -> dict:
    """Computed here from the raw record files, independently of the
    collector: per loss, each setting's mean selection mIoU over the sweep
    seeds and the argmax (ties: the first setting in the spec)."""
    out = {}
    for lo, loss in st.losses.items():
        means = {}
        for v in loss.variants:
            vals = [r['selection']['summary']['mIoU'] for r in raw
                    if r['cell']['loss'] == lo
                    and r['cell']['variant'] == v.tag
                    and r['cell']['seed'] in st.seeds]
            if vals:
                means[v.tag] = statistics.mean(vals)
        if means:
            best = max(means.values())
            out[lo] = (next(t for t, m in means.items() if m == best), means)
    return out


def _reported_values(raw: list, lo: str, tag: str, key: str) -> list:
    """``key`` on the report split of every seed of one setting, by seed."""
    runs = sorted((r for r in raw if r['cell']['loss'] == lo
                   and r['cell']['variant'] == tag),
                  key=lambda r: r['cell']['seed'])
    return [r['report']['summary'][key] for r in runs]


def _row(md: str, section: str, label: str) -> list:
    """Cells of the first table row starting with ``label`` (the first
    cells joined by `` | ``) after the line ``section``."""
    text = md[md.index(section):]
    m = re.search(rf'^\| {re.escape(label)} \|(.*)\|$', text, re.M)
    assert m, (section, label)
    return [c.strip() for c in m.group(1).split('|')]


def _section(md: str, heading: str) -> str:
    """The text of one ``## `` section of a page."""
    start = md.index(heading)
    end = md.find('\n## ', start + len(heading))
    return md[start:] if end < 0 else md[start:end]


def _mean_std_text(values: list) -> str:
    text = f'{statistics.mean(values):.2f}'
    if len(values) > 1:
        text += f' ± {statistics.stdev(values):.2f}'
    return text


def _numbers(pattern: str, md: str) -> tuple:
    m = re.search(pattern, md)
    assert m, pattern
    return tuple(int(x) for x in m.groups())


def test_page_from_records(tmp_path):
    results = tmp_path / 'results'
    st = study(results_dir=str(results))
    _fake_study_records(results, st)
    raw = _raw_records(results)
    # an unfinished and a failed run (work dirs, no records): not results
    root = tmp_path / 'camvid_study'
    for cell, state in ((C('ldam', 0, 's1-drw'), 'running'),
                        (C('blv', 0, 'sigma2'), 'failed')):
        run = root / run_name(st, cell)
        run.mkdir(parents=True)
        (run / 'grid_status.json').write_text(json.dumps(dict(
            cell=cell.to_dict(), state=state)))
    page = tmp_path / 'docs' / 'camvid.md'
    out = run_tool(['tools/collect_results.py', '--study', SPEC, root,
                    '--results-dir', results, '--page', page]).stdout
    assert '10 finished runs' in out
    md = page.read_text()
    assert md.startswith('# CamVid loss study (CPU budget)')
    # 17 planned runs, plus seeds 1 and 2 of Focal and BMS, whose sweeps
    # finished; CB, CBFocal, LDAM, BLV and PAT wait for theirs
    assert _numbers(r'(\d+) of (\d+) runs finished', md) == (10, 21)
    assert _numbers(r'(\d+) groups wait', md) == (5,)
    # the reproduce and regenerate commands
    assert f'python tools/grid.py --study {SPEC}' in md
    assert (f'python tools/collect_results.py --study {SPEC} {root} '
            f'--page {page}') in md
    # setup: the carve, the report split, the model, the sweeps, the seeds
    setup = dict(re.findall(r'^\| ([a-z ]+) \| (.*) \|$',
                            _section(md, '## Setup'), re.M))
    assert setup['selection split'].startswith(
        'carved from `train`: whole groups (`^([0-9A-Za-z]+)_`), 28% of the '
        'files (seed 0; lists in ')
    assert 'not trained on; the variant of each loss with the best mean ' \
        'mIoU there is reported' in setup['selection split']
    assert setup['report split'] == '`val`: every number below unless marked'
    assert 'the same split as the selection' not in md
    assert setup['models'] == ('UNet-c8: `configs/camvid_study/models/'
                               'unet-s5-c8.py`, no auxiliary head')
    assert '2400 iterations' in setup['schedule']
    assert setup['seeds'] == (
        '0 for every loss setting; the selected setting also: ' +
        ', '.join(f'{t} 0, 1, 2' for t in TITLES.values()))
    assert ('LDAM: `configs/_base_/losses/ldam.py` swept over `s=1, DRW`; '
            '`s=5, DRW`') in setup['losses']
    assert ('CB: `configs/_base_/losses/cb.py` swept over `beta=median`; '
            '`beta=0.9999, image counts`') in setup['losses']
    assert setup['losses'].startswith('CE: `configs/_base_/losses/ce.py`; ')

    # selection: each setting's mean selection mIoU over the sweep seed,
    # the argmax in bold (computed here from the records), provisional while
    # the sweep is unfinished
    expected = _expected_selection(st, raw)
    assert set(expected) == {'ce', 'focal', 'bms', 'pat', 'cb'}
    sel = '## Selection'
    assert _row(md, sel, 'Loss | Setting') == ['UNet-c8']
    for lo, (chosen, means) in expected.items():
        loss = st.losses[lo]
        if len(loss.variants) < 2:
            continue
        complete = len(means) == len(loss.variants)
        for v in loss.variants:
            cell = _row(md, sel, f'{loss.title} | {v.label}')
            if v.tag not in means:
                assert cell == ['']
            elif v.tag == chosen:
                assert cell == [f'**{means[v.tag]:.2f}**' + (
                    '' if complete else ' (so far)')]
            else:
                assert cell == [f'{means[v.tag]:.2f}']
    # the choices the records force: Focal gamma=1 (45 over 44) although
    # gamma=2 is better on the report split (43 over 41.5); BMS tau=0.5 on
    # its sweep seed only (50 over 48, seed 1's 47 left out)
    assert expected['focal'][0] == 'gamma1' and expected['bms'] == (
        'tau0p5', dict(tau0p5=50.0, tau1=48.0))
    # CE has one setting: nothing to select
    assert '| CE |' not in _section(md, sel)
    # each loss base as a swept setting (— where none) and the choice
    bases = '**Loss bases**'
    assert _row(md, bases, 'Loss | Base | Base setting') == ['UNet-c8']
    assert _row(md, bases, 'Focal') == [
        '`configs/_base_/losses/focal.py`', 'gamma=1', 'gamma=1']
    assert _row(md, bases, 'BMS') == [
        '`configs/_base_/losses/bms.py`', 'tau=0.5', 'tau=0.5']
    assert _row(md, bases, 'PAT') == [
        '`configs/_base_/losses/pat.py`', 'tau=2', 'tau=1 (so far)']
    assert _row(md, bases, 'LDAM') == [
        '`configs/_base_/losses/ldam.py`', '—', '']

    # loss x model mIoU and the per-model table: the selected setting's
    # mean ± sample std over its seeds on the report split, from the
    # records; the report numbers of settings not chosen appear nowhere
    table = '**mIoU (%), loss x model**'
    assert _row(md, table, 'Loss') == ['UNet-c8']
    best = max(statistics.mean(_reported_values(raw, lo, chosen, 'mIoU'))
               for lo, (chosen, _) in expected.items())
    for lo, (chosen, _) in expected.items():
        loss = st.losses[lo]
        label = loss.label(loss.variant(chosen))
        values = _reported_values(raw, lo, chosen, 'mIoU')
        text = _mean_std_text(values)
        if statistics.mean(values) == best:
            text = f'**{text}**'
        assert _row(md, table, label) == [text]
        row = _row(md, '**UNet-c8**', label)
        assert row[-1] == ', '.join(str(s) for s in sorted(
            r['cell']['seed'] for r in raw if r['cell']['loss'] == lo
            and r['cell']['variant'] == chosen))
        assert row[5].strip('*') == _mean_std_text(
            _reported_values(raw, lo, chosen, 'mIoU_tail'))
    assert _row(md, table, 'BMS (tau=0.5)') == [
        f'**49.50 ± {math.sqrt(0.5):.2f}**']
    for title in ('CBFocal', 'LDAM', 'BLV'):
        assert _row(md, table, title) == ['']
    section = md[md.index(table):md.index('**UNet-c8**')]
    assert '43.00' not in section and '52.00' not in section
    assert _row(md, '**UNet-c8**', 'CE') == [
        '41.00 ± 1.00', '80.00 ± 0.00', '51.00 ± 1.00', '70.00 ± 0.00',
        '40.00 ± 0.00', '11.00 ± 1.00', '0, 1, 2']

    # the class-balanced weights on pixel counts, computed from the counts
    # of the records
    weights = '**Class-balanced weights**'
    assert _row(md, weights, 'Setting') == ['beta', 'counts',
                                            'max/min'] + CLASSES
    n = sorted(CARVED_TRAIN_PIXELS)
    beta = 1 - 1 / n[len(n) // 2]
    w = [(1 - beta) / (1 - beta**c) for c in CARVED_TRAIN_PIXELS]
    w = [x * len(w) / sum(w) for x in w]
    for label in ('CB (beta=median)', 'CBFocal (beta=median)'):
        row = _row(md, weights, label)
        assert float(row[0]) == pytest.approx(beta, abs=1e-10)
        assert row[1] == 'pixel'
        assert float(row[2]) == pytest.approx(max(w) / min(w), rel=1e-2)
        assert [float(x) for x in row[3:]] == pytest.approx(w, abs=6e-3)
    # CB on image counts gave CE's numbers in their one paired run
    same = '**Identical settings**'
    assert _row(md, same, 'CB (beta=0.9999, image counts)') == ['CE', '1']
    assert 'Focal' not in md[md.index(same):].split('\n## ')[0]

    # seed spread: every seed of the selected settings with two or more
    spread = '## Seed spread'
    assert _row(md, spread, 'UNet-c8 | CE') == [
        '0: 40.00, 1: 42.00, 2: 41.00', '41.00 ± 1.00', '11.00 ± 1.00']
    assert _row(md, spread, 'UNet-c8 | BMS (tau=0.5)')[0] == (
        '0: 50.00, 1: 49.00, 2: not run yet')
    assert _row(md, spread, 'UNet-c8 | Focal (gamma=1)')[0] == (
        '0: 41.50, 1: not run yet, 2: not run yet')

    # the comparison with CE: differences, pooled std and the noise mark,
    # each computed here from the records
    comp = '## Comparison with CE'
    marks = set()
    for i, key in enumerate(('mIoU', 'mIoU_tail')):
        values = {lo: _reported_values(raw, lo, chosen, key)
                  for lo, (chosen, _) in expected.items()}
        varied = [v for v in values.values() if len(v) > 1]
        sigma = math.sqrt(statistics.mean(statistics.variance(v)
                                          for v in varied))
        ce = statistics.mean(values['ce'])
        title = 'mIoU' if key == 'mIoU' else 'tail mIoU'
        assert _row(md, '**Pooled seed std**', f'UNet-c8 | {title}') == [
            f'{sigma:.2f}', str(sum(len(v) - 1 for v in varied)),
            f'{math.sqrt(2) * sigma:.2f}', str(len(varied))]
        for lo, (chosen, _) in expected.items():
            if lo == 'ce':
                continue
            loss = st.losses[lo]
            diff = statistics.mean(values[lo]) - ce
            mark = ('beyond noise' if abs(diff) > math.sqrt(2) * sigma
                    else 'within noise')
            marks.add(mark)
            row = _row(md, comp, loss.label(loss.variant(chosen)))
            assert row[3 * i:3 * i + 3] == [f'{diff:+.2f}', f'{sigma:.2f}',
                                            mark]
    # the records exercise both sides of the rule
    assert marks == {'within noise', 'beyond noise'}
    assert '| CE |' not in _section(md, comp)

    # per-class table: classes from frequent to rare, seed means
    header = re.search(r'^\| Loss \| (Road.*)\|$', md, re.M).group(1)
    share = 100 * CARVED_TRAIN_PIXELS[3] / sum(CARVED_TRAIN_PIXELS)
    assert header.split(' | ')[0] == f'Road (H, {share:.1f}%)'
    assert header.strip().split(' | ')[-1].startswith('Bicyclist (T')
    ce_cls = _row(md, '## Per-class IoU', 'CE')
    # Road is class 3: mean of 3, 5 and 4
    assert ce_cls[0] == '4.00' and ce_cls[-1] == '11.00'
    assert sorted(p.name for p in page.parent.glob('camvid_class_iou_*')) \
        == ['camvid_class_iou_unet.png']
    assert (page.parent / 'camvid_class_iou_unet.png').read_bytes()[:4] == \
        b'\x89PNG'
    assert '](camvid_class_iou_unet.png)' in md
    # curves: CE and the best loss (BMS)
    assert (page.parent / 'camvid_curves_unet.png').is_file()
    assert '](camvid_curves_unet.png)' in md

    # runs: wall time, the spread of the last three evaluations and its
    # convergence mark, not-run-yet rows, the running and the failed one
    runs = _section(md, '## Runs')
    assert ('| Run | Model | Loss | Seed | Status | Iters | Wall | '
            'Train s/iter | Last 3 | Converged | Selection mIoU | '
            'Report mIoU | Report tail mIoU |') in runs
    assert runs.count('not run yet') == 21 - 10 - 2
    assert _row(runs, '| Run', f'ce{TAIL}_seed1') == [
        'UNet-c8', 'CE', '1', 'done', '2400', '8:20', '0.50', '0.50', 'yes',
        '42.00', '42.00', '12.00']
    assert _row(runs, '| Run', f'focal-gamma2{TAIL}_seed0') == [
        'UNet-c8', 'Focal (gamma=2)', '0', 'done', '2400', '5:00', '0.50',
        '3.00', 'no', '44.00', '43.00', '11.00']
    assert _row(runs, '| Run', f'cb-b0.9999-img{TAIL}_seed0') == [
        'UNet-c8', 'CB (beta=0.9999, image counts)', '0', 'done', '2400',
        '5:00', '0.50', '', 'too few', '40.00', '40.00', '10.00']
    assert _row(runs, '| Run', f'focal-gamma1{TAIL}_seed2') == [
        'UNet-c8', 'Focal (gamma=1)', '2', 'not run yet'] + [''] * 8
    assert _row(runs, '| Run', f'ldam-s1-drw{TAIL}_seed0')[:4] == [
        'UNet-c8', 'LDAM (s=1, DRW)', '0', 'running or interrupted']
    assert _row(runs, '| Run', f'blv-sigma2{TAIL}_seed0')[:4] == [
        'UNet-c8', 'BLV (sigma=2)', '0', 'failed']
    # 10 finished, 8 converged; 9 runs of 300 s and one of 500 s
    assert _row(runs, '**Finished runs**', '10') == [
        '8', '53:20', '5:20', '5:00', '8:20']
    # no machine load and no estimate of the time left
    assert '| Load |' not in runs and 'would take' not in md


def test_selection_never_reads_the_report_split(tmp_path):
    """The same records with their report numbers reversed (a setting's
    report mIoU becomes 100 minus it, its per-class IoU reversed) give
    the same choices and the same selection section; the report tables do
    change."""
    from mmseg_longtail.experiments.collect import gather
    from mmseg_longtail.experiments.page import StudyPage
    pages = {}
    for name in ('as_run', 'perturbed'):
        results = tmp_path / name / 'results'
        st = study(results_dir=str(results))
        _fake_study_records(results, st)
        if name == 'perturbed':
            for path in (results / 'runs').glob('*.json'):
                raw = json.loads(path.read_text())
                rep = raw['report']
                rep['summary'] = {k: 100.0 - v for k, v in
                                  rep['summary'].items()}
                rep['per_class_iou'] = rep['per_class_iou'][::-1]
                path.write_text(json.dumps(raw))
        page = StudyPage(gather(st), str(tmp_path / name / 'camvid.md'))
        pages[name] = (page, page.write())
    (a, md_a), (b, md_b) = pages['as_run'], pages['perturbed']
    assert {g: (s.variant, s.scores, s.complete)
            for g, s in a.tables.selections.items()} == {
                g: (s.variant, s.scores, s.complete)
                for g, s in b.tables.selections.items()}
    assert _section(md_a, '## Selection') == _section(md_b, '## Selection')
    table = '**mIoU (%), loss x model**'
    assert _row(md_a, table, 'CE') == ['41.00 ± 1.00']
    assert _row(md_b, table, 'CE') == ['59.00 ± 1.00']


def test_old_record_with_a_load_average_loads(tmp_path):
    """Committed records written with a load average (a key that is no
    field now) still load, the key ignored."""
    results = tmp_path / 'results'
    st = study(results_dir=str(results))
    _fake_record(results, st, C('ce', 0), 40.0, 10.0, [1.0] * 11)
    path = next((results / 'runs').glob('*.json'))
    raw = json.loads(path.read_text())
    raw['loadavg'] = [[1.0, 1.0, 1.0], [2.5, 1.0, 1.0]]
    path.write_text(json.dumps(raw))
    record = RunRecord.load(str(path))
    assert record.report.summary['mIoU'] == 40.0
    assert 'loadavg' not in record.to_json()


@pytest.mark.parametrize(
    'values, sigma, dof, diffs',
    [
        # CE 40, 42 (std 1.41, √2σ 2.00): PAT +1 within, BMS +3 beyond
        (dict(ce=[40.0, 42.0], pat=[42.0], bms=[44.0]), math.sqrt(2), 1,
         dict(pat=(1.0, WITHIN_NOISE), bms=(3.0, BEYOND_NOISE))),
        # a tail IoU of 0 in every seed: zero noise; an equal mean is no
        # difference, any other is beyond it
        (dict(ce=[0.0, 0.0], pat=[0.0], bms=[1.8]), 0.0, 1,
         dict(pat=(0.0, WITHIN_NOISE), bms=(1.8, BEYOND_NOISE))),
        # stds pooled over two losses with 3 seeds each (√2σ = 1.41); a
        # loss without values is left out
        (dict(ce=[40.0, 41.0, 42.0], pat=[39.0, 40.0, 41.0], bms=[40.5],
              cb=[]), 1.0, 4,
         dict(pat=(-1.0, WITHIN_NOISE), bms=(-0.5, WITHIN_NOISE))),
        # no loss with two seeds: differences without a mark
        (dict(ce=[40.0], pat=[43.0]), None, None, dict(pat=(3.0, None))),
        # no CE: no differences
        (dict(pat=[40.0, 42.0]), math.sqrt(2), 1, {}),
    ])
def test_compare_with_reference_case_table(values, sigma, dof, diffs):
    noise, out = compare_with_reference(values, 'ce')
    if sigma is None:
        assert noise is None
    else:
        assert noise.sigma == pytest.approx(sigma) and noise.dof == dof
    assert set(out) == set(diffs)
    for lo, (diff, mark) in diffs.items():
        assert out[lo][0] == pytest.approx(diff) and out[lo][1] == mark


@pytest.mark.parametrize('difference, expected', [
    # the band is √2σ = 1.41 for σ = 1: its edge is within
    (1.0, WITHIN_NOISE), (-1.0, WITHIN_NOISE), (math.sqrt(2), WITHIN_NOISE),
    (1.42, BEYOND_NOISE), (-1.42, BEYOND_NOISE), (0.0, WITHIN_NOISE)])
def test_noise_mark_rule(difference, expected):
    assert noise_mark(difference, seed_noise(
        dict(ce=[40.0, 41.0, 42.0]))) == expected


@pytest.mark.parametrize(
    'values, sigma, dof',
    [
        # one loss with seeds: its own sample std
        (dict(ce=[40.0, 42.0], pat=[30.0]), math.sqrt(2), 1),
        # stds 1 and 3 pooled as the root mean square, not the mean (2)
        (dict(ce=[40.0, 41.0, 42.0], pat=[37.0, 40.0, 43.0]), math.sqrt(5),
         4),
        # no loss with two seeds: no estimate at all
        (dict(ce=[40.0], pat=[30.0]), None, None),
    ])
def test_seed_noise_case_table(values, sigma, dof):
    noise = seed_noise(values)
    if sigma is None:
        assert noise is None
        return
    assert noise.sigma == pytest.approx(sigma)
    assert noise.dof == dof
    assert set(noise.stds) == {lo for lo, v in values.items() if len(v) > 1}
    # two single runs differ by sqrt(2) sigma; means of 4 seeds by half that
    assert noise.of_difference() == pytest.approx(math.sqrt(2) * sigma)
    assert noise.of_difference(4) == pytest.approx(sigma / math.sqrt(2))


def test_reported_values_per_split():
    """A selected setting's seeds read on either split; a run without the
    split's metrics or the key adds nothing; an unknown split names
    itself."""
    st = study()

    def rec(seed, sel, rep):
        cell = C('blv', seed, 'sigma2')
        return RunRecord(
            study=st.name, name=run_name(st, cell), cell=cell.to_dict(),
            options={}, iters=2400,
            selection=None if sel is None else SplitMetrics(
                'selection', dict(mIoU=sel), [], 2400),
            report=SplitMetrics('report', dict(mIoU=rep, aAcc=80.0), [],
                                None))

    reported = Reported(('camvid', 'unet', 'blv'), 'sigma2', 'BLV',
                        [rec(0, 33.6, 41.9), rec(1, 33.2, 41.4),
                         rec(2, None, 41.3)])
    assert reported.values('mIoU') == [41.9, 41.4, 41.3]
    assert reported.values('mIoU', 'report') == [41.9, 41.4, 41.3]
    assert reported.values('mIoU', 'selection') == [33.6, 33.2]
    assert reported.values('aAcc', 'selection') == []
    with pytest.raises(ValueError, match="split must be 'report' or "
                       "'selection', got 'val'"):
        reported.values('mIoU', 'val')


def test_bases_rows_against_the_choice(tmp_path):
    """Each swept loss's base as one of its settings (LDAM: none, DRW's
    start iteration belongs to the schedule) and the setting chosen per
    model, empty while nothing is."""
    from mmseg_longtail.experiments.collect import gather
    from mmseg_longtail.experiments.page import StudyPage
    results = tmp_path / 'results'
    st = study(results_dir=str(results))
    iou = [float(i) for i in range(11)]
    _fake_record(results, st, C('ldam', 0, 's1-drw'), 40.0, 10.0, iou)
    _fake_record(results, st, C('ldam', 0, 's5-drw'), 42.0, 12.0, iou)
    page = StudyPage(gather(st), str(tmp_path / 'camvid.md'))
    assert page.bases_rows('camvid', ['ldam', 'bms']) == [
        ['LDAM', '`configs/_base_/losses/ldam.py`', '—', 's=5, DRW'],
        ['BMS', '`configs/_base_/losses/bms.py`', 'tau=0.5', '']]
    # s=1 chosen once its selection number is the larger
    _fake_record(results, st, C('ldam', 0, 's1-drw'), 44.0, 10.0, iou)
    page = StudyPage(gather(st), str(tmp_path / 'camvid.md'))
    assert page.bases_rows('camvid', ['ldam'])[0][-1] == 's=1, DRW'


def test_page_without_any_run(tmp_path):
    page = tmp_path / 'camvid.md'
    run_tool(['tools/collect_results.py', '--study', SPEC, '--results-dir',
              tmp_path / 'none', '--page', page])
    md = page.read_text()
    assert _numbers(r'(\d+) of (\d+) runs finished', md) == (0, 17)
    assert _numbers(r'(\d+) groups wait', md) == (7,)
    runs = _section(md, '## Runs')
    assert runs.count('not run yet') == 17
    assert f'| pat-tau2{TAIL}_seed0 | UNet-c8 | PAT (tau=2) | 0 |' in runs
    # nothing finished: no summary of finished runs, no seed spread, no
    # comparison with CE, no per-setting tables of weights
    assert '**Finished runs**' not in md
    assert '| Model | Loss | mIoU per seed' not in md
    assert '## Comparison with CE' not in md
    assert '**Identical settings**' not in md
    # the selection table lists every setting, none scored yet
    assert _row(md, '## Selection', 'LDAM | s=5, DRW') == ['']
    assert _row(md, '## Selection', 'PAT | tau=2') == ['']
    assert _row(md, '**mIoU (%), loss x model**', 'BMS') == ['']


# ------------------------------------------------------------------ smoke
def _label_counts(files) -> list:
    """Pixels per class (ids 0..10) of CamVid label files."""
    import numpy as np
    from PIL import Image
    total = np.zeros(256, np.int64)
    for f in files:
        total += np.bincount(np.asarray(Image.open(f)).ravel(),
                             minlength=256)
    return total[:11].tolist()


def test_reproduce_command_smoke(tmp_path, camvid_root):
    """The study's command with a tiny schedule on the real files: the
    selection split is carved (sequence 0006R0), the statistics are
    counted on the other 266 frames, an LDAM setting (counted, DRW switched
    on after its first iteration here) trains, validates on the selection
    split, is tested on the report split and recorded, and the page is
    generated from the record."""
    root = tmp_path / 'study'
    results = tmp_path / 'results'
    tiny = ['train_cfg.max_iters=2', 'train_cfg.val_interval=2',
            'default_hooks.checkpoint.interval=2',
            'train_dataloader.batch_size=2',
            'model.decode_head.loss_decode.drw_start_iter=1',
            'val_dataloader.dataset.indices=3',
            'test_dataloader.dataset.indices=3']
    out = run_tool(['tools/grid.py', '--study', SPEC, '--data-root',
                    camvid_root, '--work-root', root, '--results-dir',
                    results, '--losses', 'ldam:s5*', '--seeds', '0',
                    '--cfg-options'] + tiny, timeout=300).stdout
    assert 'carved camvid: 266 training and 101 selection files' in out
    assert 'class statistics (camvid): writing' in out
    # the carve: whole sequence 0006R0, disjoint from training
    folder = results / 'splits' / 'camvid'
    train = (folder / 'train.txt').read_text().split()
    selection = (folder / 'selection.txt').read_text().split()
    real = sorted(p.stem for p in (camvid_root / 'img_dir' /
                                   'train').glob('*.jpg'))
    assert sorted(selection) == [s for s in real if s.startswith('0006R0_')]
    assert len(selection) == 101 and len(train) == 266
    assert not set(train) & set(selection)
    assert sorted(train + selection) == real
    # statistics of the training frames only: all of train minus 0006R0
    stats = json.loads((root / 'class_stats' / 'camvid.json').read_text())
    held_out = _label_counts(camvid_root / 'ann_dir' / 'train' / f'{s}.png'
                             for s in selection)
    assert stats['num_images'] == 266
    assert stats['pixel_counts'] == CARVED_TRAIN_PIXELS == [
        a - b for a, b in zip(CAMVID_TRAIN_PIXELS, held_out)]
    assert stats['image_counts'] == CARVED_TRAIN_IMAGES
    name = f'ldam-s5-drw{TAIL}_seed0'
    status = json.loads((root / name / 'grid_status.json').read_text())
    assert status['state'] == 'done' and status['cell']['seed'] == 0
    assert status['cell']['variant'] == 's5-drw'
    assert 'loadavg_start' not in status
    record = json.loads((results / 'runs' / f'{name}.json').read_text())
    assert record['iters'] == 2 and record['study'] == 'camvid_cpu'
    assert record['options'] == dict(DRW, s=5.0)
    assert record['train_counts'] == CARVED_TRAIN_PIXELS
    assert record['selection']['iter'] == 2
    assert record['report'] is not None
    # the selection (0006R0) and the report (val) are other images
    assert record['selection']['per_class_iou'] != \
        record['report']['per_class_iou']
    page = tmp_path / 'camvid.md'
    run_tool(['tools/collect_results.py', '--study', SPEC, '--results-dir',
              results, '--page', page])
    md = page.read_text()
    assert _numbers(r'(\d+) of (\d+) runs finished', md) == (1, 17)
    assert ('--cfg-options ' + ' '.join(tiny)) in md
    rep = f'{record["report"]["summary"]["mIoU"]:.2f}'
    assert rep in _row(md, '**mIoU (%), loss x model**',
                       'LDAM (s=5, DRW)')[0]
    sel = f'{record["selection"]["summary"]["mIoU"]:.2f}'
    assert _row(md, '## Selection', 'LDAM | s=5, DRW') == [
        f'**{sel}** (so far)']
    # one evaluation: too few to judge convergence
    assert _row(md, '## Runs', name)[8] == 'too few'
    assert (tmp_path / 'camvid_class_iou_unet.png').is_file()
