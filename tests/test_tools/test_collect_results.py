"""tools/collect_results.py and mmseg_longtail.experiments.collect / tables
on hand-made work dirs: the ways a run is found (status, metric records,
mmengine scalars), report numbers from the report split only, blanks for
missing runs, the markdown / CSV / LaTeX renderings and bad inputs."""
import csv
import io
import json
from pathlib import Path

import pytest

from mmseg_longtail.experiments import Cell, RecordError, gather, load_study
from mmseg_longtail.experiments.tables import PaperTables
from tests.conftest import REPO_ROOT, run_tool

CAMVID_CLASSES = ['Sky', 'Building', 'Pole', 'Road', 'Pavement', 'Tree',
                  'SignSymbol', 'Fence', 'Car', 'Pedestrian', 'Bicyclist']
GRID = str(REPO_ROOT / 'configs' / 'grid' / 'paper_grid.py')


def _metric_json(run: Path, stage: str, iou, dice, acc=90.0,
                 groups=(50.0, 40.0, 30.0)):
    (run / 'longtail_metrics').mkdir(parents=True, exist_ok=True)
    mdice = sum(dice) / len(dice)
    record = dict(
        stage=stage, iter=100 if stage == 'val' else None,
        classes=CAMVID_CLASSES,
        summary=dict(aAcc=acc, mIoU=sum(iou) / len(iou), mAcc=70.0,
                     mDice=mdice, DiceErr=1 - mdice / 100,
                     mIoU_head=groups[0], mIoU_body=groups[1],
                     mIoU_tail=groups[2]),
        per_class=dict(IoU=iou, Dice=dice))
    (run / 'longtail_metrics' / f'latest_{stage}.json').write_text(
        json.dumps(record))


@pytest.fixture
def work_root(tmp_path):
    root = tmp_path / 'grid'
    # 1) a grid run: status, selection (val) and report (test) records
    ce = root / 'ce_unet-s5-d16_fcn-noaux_1xb4-30k_camvid-360x480_seed0'
    ce.mkdir(parents=True)
    (ce / 'grid_status.json').write_text(json.dumps(dict(
        cell=dict(dataset='camvid', model='unet', loss='ce', variant='',
                  seed=0), state='done', wall_s=3725.0)))
    (ce / 'last_checkpoint').write_text(str(ce / 'iter_30000.pth'))
    iou_ce = [float(10 + i) for i in range(11)]
    _metric_json(ce, 'val', [99.0] * 11, [99.0] * 11)  # never reported
    _metric_json(ce, 'test', iou_ce, [float(20 + i) for i in range(11)])
    # 2) a plain tools/train.py run of the PAT leaf config: found by name
    #    (PAT's base setting is the variant tau=2), metrics from scalars,
    #    wall time from the log's timestamps (two logs: a resumed run); it
    #    has no report-split evaluation
    pat = root / 'pat_unet-s5-d16_fcn-noaux_1xb4-30k_camvid-360x480'
    for stamp, (t0, t1) in {'20240101_000000': ('10:00:00', '10:01:40'),
                            '20240101_020000': ('12:00:00', '12:00:20')
                            }.items():
        (pat / stamp / 'vis_data').mkdir(parents=True)
        (pat / stamp / f'{stamp}.log').write_text(
            f'2024/01/01 {t0} - mmengine - INFO - start\n'
            'a line without a time\n'
            f'2024/01/01 {t1} - mmengine - INFO - end\n')
    lines = [dict(lr=0.01, loss=1.0, step=50, time=0.5),
             dict(aAcc=91.0, mIoU=33.0, mAcc=44.0, mDice=55.0, step=100),
             dict(aAcc=92.5, mIoU=35.25, mAcc=45.0, mDice=60.0, step=200)]
    (pat / '20240101_000000' / 'vis_data' / 'scalars.json').write_text(
        '\n'.join(json.dumps(x) for x in lines) + '\n{"trunc')
    # 3) a grid run of PAT tau=5 with both splits
    pat5 = root / 'pat-tau5_unet-s5-d16_fcn-noaux_1xb4-30k_camvid-360x480_seed0'
    pat5.mkdir()
    (pat5 / 'grid_status.json').write_text(json.dumps(dict(
        cell=dict(dataset='camvid', model='unet', loss='pat',
                  variant='tau5', seed=0), state='done', wall_s=60.0)))
    _metric_json(pat5, 'val', [30.0] * 11, [40.0] * 11)
    _metric_json(pat5, 'test', [25.0] * 11, [40.0] * 11, acc=95.0,
                 groups=(60.0, 20.0, 5.0))
    # 4) a failed and an interrupted grid run: never in the tables
    for name, model, state in (
            ('ce_deeplabv3_r50-d8_1xb4-30k_camvid-360x480_seed0',
             'deeplabv3', 'failed'),
            ('ce_attunet_unet-s5-d16-noaux_1xb4-30k_camvid-360x480_seed0',
             'attunet', 'running')):
        run = root / name
        run.mkdir()
        (run / 'grid_status.json').write_text(json.dumps(dict(
            cell=dict(dataset='camvid', model=model, loss='ce', seed=0),
            state=state)))
        _metric_json(run, 'val', [80.0] * 11, [80.0] * 11)
    # 5) the launcher's own folder is not a run
    (root / '_grid' / 'configs').mkdir(parents=True)
    return root, iou_ce


def _results(root, tmp_path):
    study = load_study(GRID, results_dir=str(tmp_path / 'no_records'))
    return gather(study, [str(root)])


def _rows(table):
    return {label: values for label, values, _ in table.rows}


def test_runs_are_found_and_read(work_root, tmp_path):
    root, iou_ce = work_root
    res = _results(root, tmp_path)
    assert len(res.finished) == 3 and len(res.others) == 2
    ce = res.finished[Cell('camvid', 'unet', 'ce', '', 0)]
    assert ce.iters == 30000 and ce.wall_s == 3725.0
    assert ce.report.summary['mIoU'] == pytest.approx(sum(iou_ce) / 11)
    assert ce.selection.summary['mIoU'] == 99.0
    assert ce.report.per_class_iou == iou_ce
    assert ce.classes == CAMVID_CLASSES
    pat = res.finished[Cell('camvid', 'unet', 'pat', 'tau2', 0)]  # by name
    assert pat.selection.summary['mIoU'] == 35.25  # the last validation
    assert pat.selection.summary['DiceErr'] == pytest.approx(0.4)
    assert pat.report is None and pat.wall_s == 100 + 20
    assert pat.train_s_per_iter == 0.5
    assert sorted(r.state for r in res.others) == ['failed', 'running']


def test_tables_report_split_selected_variant_and_blanks(work_root,
                                                         tmp_path):
    root, iou_ce = work_root
    tables = PaperTables(_results(root, tmp_path))
    names = [t.name for t in tables.build()]
    assert names == ['table3_unet', 'table4_camvid', 'table6_camvid_unet',
                     'groups_unet', 'selection', 'runs']
    # PAT: tau=2 (35.25 on the selection split) beats tau=5 (30.0); it has
    # no report numbers, so PAT's row stays blank rather than falling back
    sel = tables.selections[('camvid', 'unet', 'pat')]
    assert sel.variant == 'tau2' and not sel.complete
    assert sel.scores == dict(tau1=None, tau2=35.25, tau5=30.0)
    t3 = _rows(tables.table3('unet'))
    assert list(t3)[:3] == ['CE', 'Focal', 'CB']
    assert t3['CE'][('CamVid', 'mIoU')] == pytest.approx(15.0)
    assert t3['PAT'][('CamVid', 'mIoU')] is None
    assert t3['Focal'][('CamVid', 'mIoU')] is None

    t4 = tables.table4('camvid')
    assert t4.flat_header() == ['Loss', 'UNet']  # failed / running: absent
    assert '| CE | 15.00 |' in t4.to_markdown()

    t6 = _rows(tables.table6('camvid', 'unet'))
    assert [t6['CE'][('', c)] for c in CAMVID_CLASSES] == iou_ce
    groups = _rows(tables.groups('unet'))
    assert groups['CE'][('CamVid', 'mIoU_tail')] == 30.0

    rows = list(csv.reader(io.StringIO(tables.runs().to_csv())))
    by_name = {r[0]: dict(zip(rows[0], r)) for r in rows[1:]}
    ce = by_name['ce_unet-s5-d16_fcn-noaux_1xb4-30k_camvid-360x480_seed0']
    assert ce['wall'] == '1:02:05' and ce['iters'] == '30000'
    assert ce['report mIoU'] == '15.00' and ce['selection mIoU'] == '99.00'
    assert by_name['ce_deeplabv3_r50-d8_1xb4-30k_camvid-360x480_seed0'][
        'status'] == 'failed'
    assert by_name['ce_attunet_unet-s5-d16-noaux_1xb4-30k_camvid-360x480_seed0'][
        'report mIoU'] == ''


def test_selection_with_reports_and_latex(work_root, tmp_path):
    root, _ = work_root
    # give the PAT leaf run a worse selection score: tau=5 is chosen and
    # reported with its test numbers
    pat = root / 'pat_unet-s5-d16_fcn-noaux_1xb4-30k_camvid-360x480'
    scalars = pat / '20240101_000000' / 'vis_data' / 'scalars.json'
    scalars.write_text(scalars.read_text().replace('35.25', '20.0'))
    tables = PaperTables(_results(root, tmp_path))
    assert tables.selections[('camvid', 'unet', 'pat')].variant == 'tau5'
    t3 = _rows(tables.table3('unet'))
    assert t3['PAT (tau=5)'][('CamVid', 'mIoU')] == 25.0
    assert t3['PAT (tau=5)'][('CamVid', 'aAcc')] == 95.0
    tex = tables.table3('unet').to_latex()
    assert r'\multicolumn{3}{c}{CamVid}' in tex
    assert r'\cmidrule(lr){2-4}' in tex
    # the best mIoU and aAcc, and the lowest (best) Dice error, in bold
    assert (r'PAT (tau=5) & \textbf{25.00} & \textbf{95.00} & '
            r'\textbf{0.6000} \\') in tex
    assert r'CE & 15.00 & 90.00 & 0.7500 \\' in tex
    assert r'Focal &  &  &  \\' in tex
    runs_tex = tables.runs().to_latex()
    assert (r"ce\_unet-s5-d16\_fcn-noaux\_1xb4-30k\_camvid-360x480\_seed0"
            in runs_tex)

    out = tmp_path / 'tables'
    printed = run_tool(['tools/collect_results.py', root, '--results-dir',
                        tmp_path / 'no_records', '--out-dir', out]).stdout
    files = sorted(p.name for p in out.iterdir())
    assert 'table3_unet.tex' in files and 'runs.csv' in files
    assert len(files) == 6 * 3
    assert '3 finished runs, 2 unfinished or failed' in printed
    assert 'have no report-split evaluation' in printed


def test_bad_inputs_fail_naming_the_file(work_root, tmp_path):
    root, _ = work_root
    proc = run_tool(['tools/collect_results.py', tmp_path / 'nothing'],
                    check=False)
    assert proc.returncode != 0 and 'does not exist' in proc.stdout
    # a truncated metric record: that work dir is named, the rest is read
    bad = root / 'pat-tau5_unet-s5-d16_fcn-noaux_1xb4-30k_camvid-360x480_seed0'
    (bad / 'longtail_metrics' / 'latest_test.json').write_text('{"summ')
    res = _results(root, tmp_path)
    assert len(res.problems) == 1 and 'latest_test.json' in res.problems[0]
    assert Cell('camvid', 'unet', 'pat', 'tau5', 0) not in res.finished
    # a bad committed record stops the collector, naming it
    runs = tmp_path / 'records' / 'runs'
    runs.mkdir(parents=True)
    (runs / 'x.json').write_text('{"kind": "something else"}')
    study = load_study(GRID, results_dir=str(tmp_path / 'records'))
    with pytest.raises(RecordError, match=r'x\.json: not a run record'):
        gather(study, [])
    proc = run_tool(['tools/collect_results.py', '--results-dir',
                     tmp_path / 'records'], check=False)
    assert proc.returncode != 0 and 'x.json' in proc.stdout
