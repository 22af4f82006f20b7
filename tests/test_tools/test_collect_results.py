"""tools/collect_results.py on hand-made work dirs: the three ways a run is
found (grid status, metric JSON, mmengine scalars), blanks for missing runs,
and the markdown / CSV / LaTeX renderings."""
import csv
import importlib.util
import io
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CAMVID_CLASSES = ['Sky', 'Building', 'Pole', 'Road', 'Pavement', 'Tree',
                  'SignSymbol', 'Fence', 'Car', 'Pedestrian', 'Bicyclist']


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


collect = _load('collect_results', REPO / 'tools' / 'collect_results.py')


def _metric_json(run: Path, iou, dice, acc=90.0, groups=(50.0, 40.0, 30.0)):
    (run / 'longtail_metrics').mkdir(parents=True)
    mdice = sum(dice) / len(dice)
    record = dict(
        stage='val', iter=100, classes=CAMVID_CLASSES,
        summary=dict(aAcc=acc, mIoU=sum(iou) / len(iou), mAcc=70.0,
                     mDice=mdice, DiceErr=1 - mdice / 100,
                     mIoU_head=groups[0], mIoU_body=groups[1],
                     mIoU_tail=groups[2]),
        per_class=dict(IoU=iou, Dice=dice))
    (run / 'longtail_metrics' / 'latest.json').write_text(json.dumps(record))


@pytest.fixture
def work_root(tmp_path):
    root = tmp_path / 'grid'
    # 1) a grid run: status + metric JSON
    ce = root / 'ce_unet-s5-d16_fcn_1xb4-30k_camvid-360x480'
    ce.mkdir(parents=True)
    (ce / 'grid_status.json').write_text(json.dumps(dict(
        cell=dict(dataset='camvid', model='unet', loss='ce'),
        status='done', wall_s=3725.0)))
    (ce / 'last_checkpoint').write_text(str(ce / 'iter_30000.pth'))
    iou_ce = [float(10 + i) for i in range(11)]
    _metric_json(ce, iou_ce, [float(20 + i) for i in range(11)])
    # 2) a plain tools/train.py run: found by name, metrics from scalars,
    #    wall time from the log's timestamps (two logs: a resumed run)
    pat = root / 'pat_unet-s5-d16_fcn_1xb4-30k_camvid-360x480'
    for stamp, (t0, t1) in {'20240101_000000': ('10:00:00', '10:01:40'),
                            '20240101_020000': ('12:00:00', '12:00:20')
                            }.items():
        (pat / stamp / 'vis_data').mkdir(parents=True)
        (pat / stamp / f'{stamp}.log').write_text(
            f'2024/01/01 {t0} - mmengine - INFO - start\n'
            'a line without a time\n'
            f'2024/01/01 {t1} - mmengine - INFO - end\n')
    lines = [dict(lr=0.01, loss=1.0, step=50),
             dict(aAcc=91.0, mIoU=33.0, mAcc=44.0, mDice=55.0, step=100),
             dict(aAcc=92.5, mIoU=35.25, mAcc=45.0, mDice=60.0, step=200)]
    (pat / '20240101_000000' / 'vis_data' / 'scalars.json').write_text(
        '\n'.join(json.dumps(x) for x in lines) + '\n')
    # 3) a failed grid run without metrics: blank, not an error
    failed = root / 'ce_deeplabv3_r50-d8_1xb4-30k_camvid-360x480'
    failed.mkdir()
    (failed / 'grid_status.json').write_text(json.dumps(dict(
        cell=dict(dataset='camvid', model='deeplabv3', loss='ce'),
        status='failed')))
    # 4) grid.py's own folder is not a run
    (root / '_grid' / 'configs').mkdir(parents=True)
    return root, iou_ce


def _rows(table):
    return {label: values for label, values in table.rows}


def test_runs_are_found_and_read(work_root):
    root, iou_ce = work_root
    runs = {r['name']: r for r in collect.collect([str(root)])}
    assert len(runs) == 3
    ce = runs['ce_unet-s5-d16_fcn_1xb4-30k_camvid-360x480']
    assert ce['cell'] == ('camvid', 'unet', 'ce')
    assert ce['iters'] == 30000 and ce['wall_s'] == 3725.0
    assert ce['summary']['mIoU'] == pytest.approx(sum(iou_ce) / 11)
    assert ce['per_class'] == iou_ce and ce['classes'] == CAMVID_CLASSES
    pat = runs['pat_unet-s5-d16_fcn_1xb4-30k_camvid-360x480']
    assert pat['cell'] == ('camvid', 'unet', 'pat')  # from the name
    assert pat['summary']['mIoU'] == 35.25  # the last validation
    assert pat['summary']['DiceErr'] == pytest.approx(0.4)
    assert pat['per_class'] is None
    assert pat['wall_s'] == 100 + 20  # two logs, summed
    assert pat['status'] == 'done'
    failed = runs['ce_deeplabv3_r50-d8_1xb4-30k_camvid-360x480']
    assert failed['status'] == 'failed' and failed['summary'] == {}


def test_tables_have_blanks_for_missing_runs(work_root):
    root, iou_ce = work_root
    runs = collect.collect([str(root)])
    names = [t.name for t in collect.build_tables(
        runs, ['table3', 'table4', 'table6', 'groups', 'runs'])]
    assert names == ['table3_unet', 'table3_deeplabv3', 'table4_camvid',
                     'table6_camvid_unet', 'groups_unet', 'groups_deeplabv3',
                     'runs']

    t3 = _rows(collect.table3(runs, 'unet'))
    assert list(t3) == ['CE', 'Focal', 'CB', 'CBFocal', 'BMS', 'LDAM', 'BLV',
                        'PAT']
    assert t3['CE'][('CamVid', 'mIoU')] == pytest.approx(15.0)
    assert t3['PAT'][('CamVid', 'aAcc')] == 92.5
    assert t3['Focal'][('CamVid', 'mIoU')] is None

    t4 = collect.table4(runs, 'camvid')
    assert t4.flat_header() == ['Loss', 'UNet', 'DLV3']
    assert _rows(t4)['CE'][('', 'DLV3')] is None  # failed: blank
    md = t4.to_markdown()
    assert '| CE | 15.00 |  |' in md
    assert '| PAT | **35.25** |  |' in md  # best of the column in bold

    t6 = _rows(collect.table6(runs, 'camvid', 'unet'))
    assert [t6['CE'][('', c)] for c in CAMVID_CLASSES] == iou_ce
    assert t6['PAT'] == {}  # no per-class values from scalars.json
    assert collect.table6(runs, 'camvid', 'deeplabv3') is None

    groups = _rows(collect.groups_table(runs, 'unet'))
    assert groups['CE'][('CamVid', 'mIoU_tail')] == 30.0
    assert groups['PAT'][('CamVid', 'mIoU_head')] is None

    rows = list(csv.reader(io.StringIO(collect.runs_table(runs).to_csv())))
    assert rows[0][:6] == ['run', 'dataset', 'model', 'loss', 'status',
                           'iters']
    by_name = {r[0]: dict(zip(rows[0], r)) for r in rows[1:]}
    ce = by_name['ce_unet-s5-d16_fcn_1xb4-30k_camvid-360x480']
    assert ce['wall'] == '1:02:05' and ce['iters'] == '30000'
    assert ce['mIoU'] == '15.00' and ce['DiceErr'] == '0.7500'
    assert by_name['ce_deeplabv3_r50-d8_1xb4-30k_camvid-360x480'][
        'mIoU'] == ''


def test_latex_and_files(work_root, tmp_path, capsys):
    root, _ = work_root
    runs = collect.collect([str(root)])
    tex = collect.table3(runs, 'unet').to_latex()
    assert r'\multicolumn{3}{c}{CamVid}' in tex
    assert r'\cmidrule(lr){2-4}' in tex
    # PAT: the best mIoU and aAcc and the lowest (best) Dice error
    assert r'PAT & \textbf{35.25} & \textbf{92.50} & \textbf{0.4000} \\' \
        in tex
    assert r'CE & 15.00 & 90.00 & 0.7500 \\' in tex
    assert r'Focal &  &  &  \\' in tex
    # names and paths are escaped for LaTeX
    runs_tex = collect.runs_table(runs).to_latex()
    assert (r'ce\_unet-s5-d16\_fcn\_1xb4-30k\_camvid-360x480 & camvid'
            in runs_tex)

    out = tmp_path / 'tables'
    assert collect.main([str(root), '--out-dir', str(out)]) == 0
    files = sorted(p.name for p in out.iterdir())
    assert 'table3_unet.tex' in files and 'runs.csv' in files
    assert len(files) == 7 * 3
    printed = capsys.readouterr().out
    assert '3 runs under' in printed and '**Table 3' in printed


def test_empty_root_gives_blank_tables(tmp_path):
    assert collect.collect([str(tmp_path / 'nothing')]) == []
    assert collect.main([str(tmp_path / 'nothing'), '--print-format',
                         'none']) == 0
