"""The CamVid study (configs/camvid_study/): the spec, its run order, the
rendered configs (every loss builds and trains one step on both models),
the results page from hand-made work dirs, and a smoke run of the
reproduce command on the real CamVid files."""
import json
import math
import re
from pathlib import Path

import pytest

from mmseg_longtail.experiments import (Cell, RunRecord, SpecError,
                                        SplitMetrics, filter_cells,
                                        load_study, plan_cells, run_name)
from mmseg_longtail.experiments.launch import make_plan
from tests.conftest import CAMVID_TRAIN_PIXELS, REPO_ROOT, run_tool

SPEC = 'configs/camvid_study/study_cpu.py'
CLASSES = ['Sky', 'Building', 'Pole', 'Road', 'Pavement', 'Tree',
           'SignSymbol', 'Fence', 'Car', 'Pedestrian', 'Bicyclist']
LOSS_TYPES = dict(ce='CrossEntropyLoss', focal='SoftmaxFocalLoss',
                  cb='ClassBalancedLoss', cbfocal='ClassBalancedLoss',
                  bms='BalancedSoftmaxLoss', ldam='LDAMLoss',
                  blv='BLVLoss', pat='PATLoss',
                  cb_median='ClassBalancedLoss', ldam_s1='LDAMLoss')
COUNTED = {'cb', 'cbfocal', 'bms', 'ldam', 'blv', 'cb_median', 'ldam_s1'}


def study(**kw):
    return load_study(str(REPO_ROOT / SPEC), **kw)


def _stats_file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(
        classes=CLASSES, ignore_index=255, num_images=367,
        pixel_counts=CAMVID_TRAIN_PIXELS, image_counts=[300] * 11)))
    return path


# ------------------------------------------------------------------ spec
def C(model, loss, seed):
    return Cell('camvid', model, loss, '', seed)


def test_spec_cells_and_order():
    st = study()
    cells, pending = plan_cells(st)
    assert pending == []
    # 10 losses (the grid's 8, CB-median, LDAM-s1) x 2 models at seed 0,
    # plus seed 1 for CE and PAT
    assert len(cells) == 10 * 2 + 2 * 2
    assert len(set(cells)) == len(cells)
    assert {(c.model, c.loss) for c in cells if c.seed == 0} == {
        (m, lo) for m in ('unet', 'deeplabv3plus') for lo in LOSS_TYPES}
    assert {(c.model, c.loss) for c in cells if c.seed == 1} == {
        (m, lo) for m in ('unet', 'deeplabv3plus') for lo in ('ce', 'pat')}
    # most informative first: CE and PAT on both models, then the other
    # losses, the second seeds last
    assert [(c.loss, c.seed) for c in cells[:4]] == [
        ('ce', 0), ('ce', 0), ('pat', 0), ('pat', 0)]
    assert {c.model for c in cells[:4]} == {'unet', 'deeplabv3plus'}
    assert all(c.seed == 0 for c in cells[:20])
    assert all(c.seed == 1 for c in cells[20:])
    # selection
    sel = filter_cells(st, cells, models=['deep*'], losses=['c*'],
                       seeds=[1])
    assert sel == [C('deeplabv3plus', 'ce', 1)]
    with pytest.raises(ValueError, match="'unet3' matches none"):
        filter_cells(st, cells, models=['unet3'])
    # paths: relative to the repository root (compared after resolving
    # symlinks on both sides: ../shared may be one)
    ds = st.datasets['camvid']
    assert Path(ds.data_root).resolve() == (
        REPO_ROOT / '..' / 'shared' / 'data' / 'camvid').resolve()
    assert ds.class_stats_file == str(
        REPO_ROOT / 'work_dirs' / 'camvid_study' / 'class_stats' /
        'camvid.json')
    assert (ds.selection, ds.report) == ('val', 'val')
    assert st.schedule_name == '400i'
    assert run_name(st, cells[0]) == (
        'ce_unet-s5-c8_fcn_1xb8-400i_camvid-144x192_seed0')
    # losses beyond the grid's: their own base, name and title, counted
    # because the loss class needs counts
    extra = st.losses['cb_median']
    assert extra.base == str(REPO_ROOT / 'configs' / '_base_' / 'losses' /
                             'cb_median.py')
    assert (extra.title, extra.counted) == ('CB-median', True)
    ldam = st.losses['ldam_s1']
    assert ldam.variants[0].options == (('s', 1.0), )
    assert (ldam.name, ldam.title, ldam.counted) == ('ldam-s1', 'LDAM-s1',
                                                     True)
    assert not st.losses['pat'].counted
    assert run_name(st, C('unet', 'cb_median', 0)) == (
        'cb-median_unet-s5-c8_fcn_1xb8-400i_camvid-144x192_seed0')


def test_full_res_variant_uses_grid_bases():
    st = study(full_res=True)
    grid = load_study(str(REPO_ROOT / 'configs/grid/paper_grid.py'))
    assert st.models['unet'] == grid.models['unet']
    assert st.models['deeplabv3plus'] == grid.models['deeplabv3plus']
    assert st.schedule_name == '30k'
    assert st.datasets['camvid'].base.endswith(
        'configs/_base_/datasets/camvid.py')
    assert st.work_root.endswith('work_dirs/camvid_study_full')
    assert list(st.losses) == list(study().losses)
    assert run_name(st, C('deeplabv3plus', 'pat', 1)) == (
        'pat_deeplabv3plus_r50-d8_1xb4-30k_camvid-360x480_seed1')


def test_bad_spec_fails_naming_the_key(tmp_path):
    spec = tmp_path / 'bad.py'
    text = (REPO_ROOT / SPEC).read_text().replace(
        "'../grid/paper_grid.py'", repr(str(REPO_ROOT / 'configs' / 'grid' /
                                            'paper_grid.py')))
    cases = [
        ("extra_seeds = dict(ce=[1], pat=[1])",
         "extra_seeds = dict(ce=[1], xx=[1])", SpecError, 'extra_seeds'),
        ("name='cb-median',", '', SpecError,
         r"losses.cb_median needs \['name'\]"),
        ("options=dict(s=1.0),", "options=dict(s=1.0), scale=1,", SpecError,
         r"losses.ldam_s1 has unknown fields \['scale'\]"),
        ('losses/cb_median.py', 'losses/cb_med.py', FileNotFoundError,
         'losses.cb_median.base'),
        ("priority = ['ce', 'pat']", "priority = ['ce', 'pta']", SpecError,
         r"priority names losses \['pta'\]"),
        ("seeds = [0]", "seeds = [0]\nselect_metric = 'mIoUU'", SpecError,
         'select_metric'),
        ("report='val'", "report='train'", SpecError,
         'datasets.camvid.report'),
        ("selection='val',", "selection=dict(carve=dict(fraction=2, "
         "group='x')),", SpecError, r'carve.fraction must lie in \(0, 1\)'),
        ("page = ", "pages = 1\npage = ", SpecError,
         r"unknown keys \['pages'\]"),
    ]
    for old, new, exc, match in cases:
        assert old in text, old
        spec.write_text(text.replace(old, new))
        with pytest.raises(exc, match=match):
            load_study(str(spec))
    spec.write_text(text[:text.index('full_res = dict(')])
    assert load_study(str(spec)).name == 'camvid_cpu'
    with pytest.raises(SpecError, match='full_res'):
        load_study(str(spec), full_res=True)


def test_dry_run_plan_writes_nothing(tmp_path):
    work = tmp_path / 'study'
    out = run_tool(['tools/grid.py', '--study', SPEC, '--work-root', work,
                    '--results-dir', tmp_path / 'results', '--losses', 'pat',
                    '--dry-run']).stdout
    assert '4 cells selected' in out
    keys = re.findall(r'^\s+\d+ (camvid/\S+)\s+new\s+run', out, re.M)
    assert keys == ['camvid/unet/pat/seed0', 'camvid/deeplabv3plus/pat/seed0',
                    'camvid/unet/pat/seed1', 'camvid/deeplabv3plus/pat/seed1']
    assert 'class statistics (camvid): ' in out
    assert 'would write it' in out
    assert str(work / 'pat_unet-s5-c8_fcn_1xb8-400i_camvid-144x192_seed1') \
        in out
    assert not work.exists() and not (tmp_path / 'results').exists()
    out = run_tool(['tools/grid.py', '--study', SPEC, '--full-res',
                    '--work-root', work, '--models', 'unet', '--losses',
                    'ce', '--dry-run']).stdout
    assert 'ce_unet-s5-d16_fcn_1xb4-30k_camvid-360x480_seed0' in out
    proc = run_tool(['tools/grid.py', '--study', SPEC, '--data-config',
                     'x.py', '--datasets', 'camvid', '--dry-run'],
                    check=False)
    assert proc.returncode != 0 and '--data-config replaces' in proc.stdout


# --------------------------------------------------------------- configs
@pytest.fixture(scope='module')
def rendered(tmp_path_factory):
    """The 24 rendered configs of the study (no training), with a stats
    file holding the shared CamVid counts."""
    work = tmp_path_factory.mktemp('study')
    st = study(work_root=str(work), results_dir=str(work / 'results'))
    stats = _stats_file(Path(st.datasets['camvid'].class_stats_file))
    return work, stats, make_plan(st)


def test_rendered_configs(rendered):
    from mmengine.config import Config
    work, stats, plan = rendered
    assert len(plan) == 24
    schedule = Config.fromfile(REPO_ROOT / 'configs' / 'camvid_study' /
                               'schedule_cpu.py')
    # one config per setting, shared by its seeds (the launcher sets the
    # seed)
    by_setting = {}
    for e in plan:
        by_setting.setdefault((e.cell.model, e.cell.loss), set()).add(
            e.config)
    assert all(len(v) == 1 for v in by_setting.values())
    for e in plan:
        cfg = Config.fromfile(e.config)
        cell = dict(model=e.cell.model, loss=e.cell.loss, seed=e.cell.seed)
        assert e.work_dir == str(work / e.name)
        assert e.name.endswith(f'_seed{cell["seed"]}')
        loss = cfg.model.decode_head.loss_decode
        assert loss.type == LOSS_TYPES[cell['loss']]
        if loss.type == 'ClassBalancedLoss':
            assert loss.beta == ('median' if cell['loss'] == 'cb_median'
                                 else 0.9999)
        if loss.type == 'LDAMLoss':
            assert loss.s == (1.0 if cell['loss'] == 'ldam_s1' else 30.0)
        assert (loss.get('class_counts') == str(stats)) == (
            cell['loss'] in COUNTED)
        assert cfg.model.auxiliary_head.loss_decode.type == 'CrossEntropyLoss'
        assert cfg.model.decode_head.num_classes == 11
        for split in ('train', 'val', 'test'):
            ds = cfg[f'{split}_dataloader'].dataset
            assert ds.data_root == study().datasets['camvid'].data_root
        # the shared copy has no test split: test on val
        assert cfg.test_dataloader.dataset.data_prefix.img_path == \
            'img_dir/val'
        assert cfg.val_evaluator.class_stats_file == str(stats)
        assert cfg.test_evaluator.class_stats_file == str(stats)
        assert cfg.crop_size == (144, 192)
        assert cfg.train_dataloader.batch_size == 8
        # the same schedule for every loss
        assert cfg.train_cfg.max_iters == schedule.train_cfg.max_iters
        assert cfg.optim_wrapper.optimizer == schedule.optimizer
        assert cfg.param_scheduler == schedule.param_scheduler
        size = cfg.model.data_preprocessor.size
        assert tuple(size) == (144, 192)  # divisible by 16 (UNet)
        backbone = cfg.model.backbone
        if cell['model'] == 'unet':
            assert backbone.type == 'UNet' and backbone.base_channels == 8
        else:
            assert backbone.type == 'ResNetV1c' and backbone.depth == 18
            assert backbone.base_channels == 32
    data_base = (work / '_grid' / 'configs' / 'data_camvid.py').read_text()
    assert 'data_root = ' in data_base and str(stats) in data_base


def test_every_loss_trains_one_step_on_both_models(rendered):
    """Each loss of the study builds from its rendered config and takes one
    optimiser step on a tiny batch, on both models (finite loss, weights
    change)."""
    import torch
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample

    import mmseg_longtail  # noqa: F401
    init_default_scope('mmseg')
    _, _, plan = rendered
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
    seen = set()
    for e in plan:
        cell = dict(model=e.cell.model, loss=e.cell.loss)
        if (cell['model'], cell['loss']) in seen:
            continue
        seen.add((cell['model'], cell['loss']))
        cfg = Config.fromfile(e.config)
        cfg.model.data_preprocessor.size = (h, w)
        model = MODELS.build(cfg.model)
        model.train()
        optim = build_optim_wrapper(model, cfg.optim_wrapper)
        before = [p.detach().clone() for p in model.parameters()]
        log = model.train_step(dict(inputs=inputs, data_samples=samples),
                               optim)
        key = [k for k in log if k.startswith('decode.loss')]
        assert len(key) == 1, (e.name, list(log))
        assert torch.isfinite(log['loss']), e.name
        assert any(not torch.equal(a, b)
                   for a, b in zip(before, model.parameters())), e.name
    assert len(seen) == 20


# ------------------------------------------------------------------ page
def _fake_record(results: Path, st, cell, miou, tail, per_class,
                 wall=300.0):
    """A committed run record of a finished run."""
    summary = dict(mIoU=miou, aAcc=80.0, mAcc=50.0, mDice=miou + 10,
                   DiceErr=1 - (miou + 10) / 100, mIoU_head=70.0,
                   mIoU_body=40.0, mIoU_tail=tail)
    groups = dict(head=[0, 1, 3, 5], body=[4, 6, 8], tail=[2, 7, 9, 10])
    RunRecord(
        study=st.name, name=run_name(st, cell), cell=cell.to_dict(),
        options={}, iters=400,
        selection=SplitMetrics('selection', dict(summary), per_class, 400),
        report=SplitMetrics('report', dict(summary), per_class, None),
        classes=CLASSES, groups=groups, train_counts=CAMVID_TRAIN_PIXELS,
        curve=[dict(iter=200, mIoU=miou / 2), dict(iter=400, mIoU=miou)],
        wall_s=wall, train_s_per_iter=0.5,
        loadavg=[[1.0, 1.0, 1.0], [2.5, 1.0, 1.0]]).save(str(results))


def _row(md: str, section: str, label: str) -> list:
    """Cells of the first table row starting with ``label`` after the
    line ``section``."""
    text = md[md.index(section):]
    m = re.search(rf'^\| {re.escape(label)} \|(.*)\|$', text, re.M)
    return [c.strip() for c in m.group(1).split('|')]


def test_page_from_records(tmp_path):
    results = tmp_path / 'results'
    st = study(results_dir=str(results))
    iou = [float(i) for i in range(11)]
    _fake_record(results, st, C('unet', 'ce', 0), 40.0, 10.0, iou)
    _fake_record(results, st, C('unet', 'ce', 1), 42.0, 12.0,
                 [v + 2 for v in iou], wall=500.0)
    _fake_record(results, st, C('unet', 'pat', 0), 44.0, 20.0, iou)
    _fake_record(results, st, C('unet', 'pat', 1), 45.0, 18.0, iou)
    _fake_record(results, st, C('unet', 'focal', 0), 41.5, 11.0, iou)
    _fake_record(results, st, C('unet', 'bms', 0), 50.0, 30.0, iou)
    # CB with near-uniform weights trains as CE: the same numbers
    _fake_record(results, st, C('unet', 'cb', 0), 40.0, 10.0, iou)
    # an unfinished and a failed run (work dirs, no records): not results
    root = tmp_path / 'camvid_study'
    for cell, state in ((C('deeplabv3plus', 'ce', 0), 'running'),
                        (C('deeplabv3plus', 'pat', 0), 'failed')):
        run = root / run_name(st, cell)
        run.mkdir(parents=True)
        (run / 'grid_status.json').write_text(json.dumps(dict(
            cell=cell.to_dict(), state=state)))
    page = tmp_path / 'docs' / 'camvid.md'
    out = run_tool(['tools/collect_results.py', '--study', SPEC, root,
                    '--results-dir', results, '--page', page]).stdout
    assert '7 finished runs' in out
    md = page.read_text()
    assert md.startswith('# CamVid loss study (CPU budget)')
    assert '7 of 24 runs finished' in md
    assert 'LDAM-s1: `configs/_base_/losses/ldam.py` with `s=1.0`' in md
    assert 'the same split as the selection' in md
    # the reproduce and regenerate commands
    assert f'python tools/grid.py --study {SPEC}' in md
    assert (f'python tools/collect_results.py --study {SPEC} {root} '
            f'--page {page}') in md
    # loss x model mIoU: mean ± sample std over seeds, the best in bold
    sd_ce = math.sqrt(((40 - 41) ** 2 + (42 - 41) ** 2) / 1)
    assert _row(md, '**mIoU (%), loss x model**', 'CE') == [
        f'41.00 ± {sd_ce:.2f}', '']
    assert _row(md, '**mIoU (%), loss x model**', 'PAT') == [
        f'44.50 ± {math.sqrt(0.5):.2f}', '']
    assert _row(md, '**mIoU (%), loss x model**', 'BMS') == ['**50.00**', '']
    assert _row(md, '**mIoU (%), loss x model**', 'LDAM') == ['', '']
    unet = _row(md, '**UNet-c8**', 'CE')
    assert unet == [f'41.00 ± {sd_ce:.2f}', '80.00 ± 0.00',
                    f'51.00 ± {sd_ce:.2f}', '70.00 ± 0.00', '40.00 ± 0.00',
                    f'11.00 ± {sd_ce:.2f}', '0, 1']
    # the class-balanced weights, computed from the counts of the records
    # (no statistics file here), and the identical pair
    assert ('CB: beta = 0.9999 on pixel counts gives class weights with '
            'max/min ratio 1.000000: uniform but for rounding, so the loss '
            'is its unweighted base (CE).') in md
    assert '(Focal).' in md  # CBFocal
    n = sorted(CAMVID_TRAIN_PIXELS)
    beta = 1 - 1 / n[len(n) // 2]
    w = [(1 - beta) / (1 - beta**c) for c in CAMVID_TRAIN_PIXELS]
    m = re.search(r'CB-median: beta = ([0-9.]+) on pixel counts gives class '
                  r'weights with max/min ratio ([0-9.]+) \((.*?)\)\.', md)
    assert float(m.group(1)) == pytest.approx(beta, abs=1e-10)
    assert float(m.group(2)) == pytest.approx(max(w) / min(w), rel=1e-2)
    assert m.group(3).startswith('Sky ') and 'Bicyclist ' in m.group(3)
    assert ('CB and CE gave identical metrics in the one paired run (same '
            'model and seed).') in md
    assert 'Focal and CE gave identical' not in md
    # the failed DeepLab PAT run is not a result
    assert _row(md, '**DLV3+ R18-w32**', 'PAT')[0] == ''
    # seed noise: pooled std over CE and PAT, sqrt(2) sigma as the noise
    pooled = math.sqrt((sd_ce ** 2 + 0.5) / 2)
    noise = math.sqrt(2) * pooled
    assert f'σ = {pooled:.2f}' in md and f'√2σ = {noise:.2f}' in md
    # Focal is 0.5 from CE (< noise), BMS 9 (> noise), PAT 3.5 (> 1.58)
    assert re.search(r'smaller than the seed noise[^.]*Focal \(\+0\.50\)',
                     md)
    large = re.search(r'Larger than the seed noise: (.*?)\.(?:\s|$)', md)
    assert 'BMS (+9.00)' in large.group(1)
    assert 'PAT (+3.50)' in large.group(1)
    assert 'Focal' not in large.group(1)
    # per-class table: classes from frequent to rare, seed means
    header = re.search(r'^\| Loss \| (Road.*)\|$', md, re.M).group(1)
    assert header.split(' | ')[0].startswith('Road (H, 33.0%')
    assert header.strip().split(' | ')[-1].startswith('Bicyclist (T')
    ce_cls = _row(md, '## Per-class IoU', 'CE')
    # Road is class 3: mean of 3 and 5
    assert ce_cls[0] == '4.00' and ce_cls[-1] == '11.00'
    for m in ('unet', 'deeplabv3plus'):
        png = page.parent / f'camvid_class_iou_{m}.png'
        assert (png.is_file() and png.read_bytes()[:4] == b'\x89PNG') == (
            m == 'unet')
    assert '](camvid_class_iou_unet.png)' in md
    # curves: CE and the best loss (BMS)
    assert (page.parent / 'camvid_curves_unet.png').is_file()
    # runs: wall time, not-run-yet rows, the running one
    runs = md[md.index('## Runs'):]
    assert runs.count('not run yet') == 24 - 9
    assert re.search(r'\| ce_unet-s5-c8_fcn_1xb8-400i_camvid-144x192_seed1 '
                     r'\| UNet-c8 \| CE \| 1 \| done \| 400 \| 8:20 \|', runs)
    assert 'running or interrupted' in runs
    # 6 runs of 300 s and one of 500 s; 17 left at the mean, 328.6 s
    assert ('Finished runs took 38:20 in all, 5:29 on average (min 5:00, '
            'max 8:20); the 17 remaining runs would take about 1:33:06') \
        in runs


def test_page_without_any_run(tmp_path):
    page = tmp_path / 'camvid.md'
    run_tool(['tools/collect_results.py', '--study', SPEC, '--results-dir',
              tmp_path / 'none', '--page', page])
    md = page.read_text()
    assert '0 of 24 runs finished' in md
    assert md[md.index('## Runs'):].count('not run yet') == 24
    assert 'seed noise is unknown' in md


# ------------------------------------------------------------------ smoke
def test_reproduce_command_smoke(tmp_path, camvid_root):
    """The study's command with a tiny schedule on the real files: the
    statistics are written first, a counted loss trains, validates, is
    tested on the report split and recorded, and the page is generated
    from the record."""
    root = tmp_path / 'study'
    results = tmp_path / 'results'
    tiny = ['train_cfg.max_iters=2', 'train_cfg.val_interval=2',
            'default_hooks.checkpoint.interval=2',
            'train_dataloader.batch_size=2',
            'val_dataloader.dataset.indices=3',
            'test_dataloader.dataset.indices=3']
    out = run_tool(['tools/grid.py', '--study', SPEC, '--data-root',
                    camvid_root, '--work-root', root, '--results-dir',
                    results, '--models', 'unet', '--losses', 'bms',
                    '--seeds', '0', '--cfg-options'] + tiny,
                   timeout=300).stdout
    assert 'class statistics (camvid): writing' in out
    stats = json.loads((root / 'class_stats' / 'camvid.json').read_text())
    assert stats['pixel_counts'] == CAMVID_TRAIN_PIXELS
    name = 'bms_unet-s5-c8_fcn_1xb8-400i_camvid-144x192_seed0'
    status = json.loads((root / name / 'grid_status.json').read_text())
    assert status['state'] == 'done' and status['cell']['seed'] == 0
    assert len(status['loadavg_start']) == 3
    record = json.loads((results / 'runs' / f'{name}.json').read_text())
    assert record['iters'] == 2 and record['study'] == 'camvid_cpu'
    assert record['train_counts'] == CAMVID_TRAIN_PIXELS
    assert record['selection']['iter'] == 2
    assert record['report'] is not None
    page = tmp_path / 'camvid.md'
    run_tool(['tools/collect_results.py', '--study', SPEC, '--results-dir',
              results, '--page', page])
    md = page.read_text()
    assert '1 of 24 runs finished' in md
    assert ('--cfg-options ' + ' '.join(tiny)) in md
    assert f'{record["report"]["summary"]["mIoU"]:.2f}' in _row(
        md, '**mIoU (%), loss x model**', 'BMS')[0]
    assert (tmp_path / 'camvid_class_iou_unet.png').is_file()
