"""Shared by the experiment-layer tests: the facts of the CamVid CPU study
(configs/camvid_study/study_cpu.py), hand-made run records of it, the tiny
study for real runs, and readers of the markdown tables that pages and
tools print."""
import contextlib
import importlib.util
import io
import json
import os
import os.path as osp
import re
import statistics
import subprocess
from pathlib import Path
from typing import List, Optional, Sequence

from mmseg_longtail.experiments import (Cell, RunRecord, SplitMetrics,
                                        load_study, run_name)
from mmseg_longtail.experiments.spec import REPO_ROOT as SPEC_REPO_ROOT
from tests.conftest import REPO_ROOT

GRID = str(REPO_ROOT / 'configs' / 'grid' / 'paper_grid.py')


# ------------------------------------------------------------ the tools
def run_in_process(args: Sequence, cwd: Optional[Path] = None,
                   check: bool = True) -> subprocess.CompletedProcess:
    """``python tools/X.py ARGS`` as the tool's ``main(ARGS)`` in this
    process (``args[0]`` the tool's path): what :func:`tests.conftest.
    run_tool` returns, without the start-up of an interpreter that imports
    torch and mmseg (seconds per call). Its stdout and stderr are captured
    together; a ``SystemExit`` message is appended to them. Child processes
    (the training) get OMP_NUM_THREADS=1 unless it is set."""
    tool, *argv = [str(a) for a in args]
    spec = importlib.util.spec_from_file_location(
        '_tool_' + Path(tool).stem, REPO_ROOT / tool)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out, here = io.StringIO(), os.getcwd()
    own_threads = 'OMP_NUM_THREADS' not in os.environ
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    os.chdir(cwd or REPO_ROOT)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                rc = module.main(argv)
            except SystemExit as e:
                rc = e.code
                if isinstance(rc, str):
                    print(rc)
                    rc = 1
    finally:
        os.chdir(here)
        if own_threads:
            os.environ.pop('OMP_NUM_THREADS', None)
    proc = subprocess.CompletedProcess(args, rc or 0, out.getvalue())
    if check and proc.returncode != 0:
        raise AssertionError(f'{" ".join(map(str, args))} exited '
                             f'{proc.returncode}:\n{proc.stdout[-6000:]}')
    return proc


# ------------------------------------------------------- the tiny study
# tools/grid.py runs of it on the synthetic data (tests pass --work-root
# and --results-dir)
TINY_STUDY = 'tests/test_experiments/data/tiny_study.py'
TINY_TAIL = '_unet-s5-d16_fcn-noaux_1xb2-30k_synthetic-tiny-32x32_seed0'

# -------------------------------------------------- the CamVid CPU study
SPEC = 'configs/camvid_study/study_cpu.py'
SPEC_DIR = 'configs/camvid_study'
CLASSES = ['Sky', 'Building', 'Pole', 'Road', 'Pavement', 'Tree',
           'SignSymbol', 'Fence', 'Car', 'Pedestrian', 'Bicyclist']
LOSS_TYPES = dict(ce='CrossEntropyLoss', focal='SoftmaxFocalLoss',
                  cb='ClassBalancedLoss', cbfocal='ClassBalancedLoss',
                  bms='BalancedSoftmaxLoss', ldam='LDAMLoss',
                  blv='BLVLoss', pat='PATLoss', recall='RecallLoss',
                  seesaw='SeesawLoss', eqlv2='EQLv2Loss',
                  efl='EqualizedFocalLoss', topk='TopKCrossEntropyLoss')
COUNTED = {'cb', 'cbfocal', 'bms', 'ldam', 'blv'}
# configs/_base_/losses/<file>.py where the file is not named as the key
BASES = dict(efl='equalized_focal', topk='topk_ce')
# the settings of each loss, in the spec's order (CE has no sweep)
TAGS = dict(ce=[''], focal=['gamma1', 'gamma2'],
            cb=['bmed', 'b0.9999-img'], cbfocal=['bmed', 'b0.9999-img'],
            bms=['tau0p5', 'tau1'], ldam=['s1-drw', 's5-drw'],
            blv=['sigma2', 'sigma4'], pat=['tau1', 'tau2'],
            recall=['batch', 'running'], seesaw=['p0p4', 'p0p8'],
            eqlv2=['mu0p8', 'mu0p9'], efl=['s4', 's8'], topk=['k10', 'k25'])
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
    ('recall', 'batch'): dict(recall='batch'),
    ('recall', 'running'): dict(recall='running'),
    ('seesaw', 'p0p4'): dict(p=0.4),
    ('seesaw', 'p0p8'): dict(p=0.8),
    ('eqlv2', 'mu0p8'): dict(mu=0.8),
    ('eqlv2', 'mu0p9'): dict(mu=0.9),
    ('efl', 's4'): dict(s=4.0),
    ('efl', 's8'): dict(s=8.0),
    ('topk', 'k10'): dict(k=10.0),
    ('topk', 'k25'): dict(k=25.0),
}
TITLES = dict(ce='CE', focal='Focal', cb='CB', cbfocal='CBFocal', bms='BMS',
              ldam='LDAM', blv='BLV', pat='PAT', recall='Recall',
              seesaw='Seesaw', eqlv2='EQLv2', efl='EFL', topk='TopK CE')
# the name pieces of the CPU study's runs: UNet-c8 without an auxiliary
# head, batch 8, 2400 iterations, 144x192 crops
TAIL = '_unet-s5-c8_fcn-noaux_1xb8-2400i_camvid-144x192'
# CamVid's training sequences (the shared copy: 367 frames); the carve
# moves sequence 0006R0 (101 frames) to the selection split
SEQUENCE_SIZES = {'0001TP': 62, '0006R0': 101, '0016E5': 204}
# class statistics of the 266 training frames left after the carve (the
# shared copy's 367 minus the 101 of 0006R0; checked against the label
# files in test_launch's smoke test)
CARVED_TRAIN_PIXELS = [7142823, 12871282, 439457, 13859719, 2434739,
                       3089374, 447488, 581520, 2664876, 347576, 172804]
CARVED_TRAIN_IMAGES = [265, 266, 265, 266, 266, 222, 262, 129, 265, 249, 187]


def camvid_study(**kw):
    return load_study(str(REPO_ROOT / SPEC), **kw)


def C(loss, seed, variant='', model='unet'):
    return Cell('camvid', model, loss, variant, seed)


def spec_rel(path: str) -> str:
    """``path`` relative to the repository root of the spec module, which
    must be this checkout (``samefile``: also through symlinks)."""
    assert osp.samefile(SPEC_REPO_ROOT, REPO_ROOT)
    return osp.relpath(path, SPEC_REPO_ROOT)


def write_stats_file(path: Path) -> Path:
    """The carved training split's class statistics."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(
        classes=CLASSES, ignore_index=255, num_images=266,
        pixel_counts=CARVED_TRAIN_PIXELS,
        image_counts=CARVED_TRAIN_IMAGES)))
    return path


def fake_stems(sequence: str, n: int) -> list:
    """CamVid-like frame stems of one sequence (``<sequence>_<frame>``)."""
    frame = 'f{:05d}' if sequence == '0006R0' else '{:06d}'
    return [f'{sequence}_' + frame.format(930 + 30 * i) for i in range(n)]


def fake_camvid(root: Path) -> dict:
    """A CamVid layout of empty files with the shared copy's training
    sequences and sizes (and 5 val frames): what the carve and the data
    sets read. Returns split -> stems."""
    stems = dict(train=[s for seq, n in SEQUENCE_SIZES.items()
                        for s in fake_stems(seq, n)],
                 val=fake_stems('0016E5', 5))
    for split, names in stems.items():
        for sub, suffix in (('img_dir', '.jpg'), ('ann_dir', '.png')):
            folder = root / sub / split
            folder.mkdir(parents=True, exist_ok=True)
            for s in names:
                (folder / (s + suffix)).touch()
    return stems


# ---------------------------------------------------- hand-made records
def curve(miou, spread=0.5, n=8):
    """A validation curve of ``n`` evaluations every 300 iterations, its
    last three within ``spread`` (n < 6: too short to judge)."""
    values = [miou - 20 + 3 * i for i in range(n - 3)] + [
        miou - spread, miou - spread / 2, miou]
    return [dict(iter=300 * (i + 1), mIoU=v, mIoU_tail=v / 2)
            for i, v in enumerate(values[-n:])]


def fake_record(results: Path, st, cell, miou, tail, per_class,
                wall=300.0, sel=None, curve_=None) -> RunRecord:
    """A committed run record of a finished run; ``sel``: its selection
    mIoU when it differs from the report's."""
    summary = dict(mIoU=miou, aAcc=80.0, mAcc=50.0, mDice=miou + 10,
                   DiceErr=1 - (miou + 10) / 100, mIoU_head=70.0,
                   mIoU_body=40.0, mIoU_tail=tail)
    sel_summary = dict(summary, mIoU=miou if sel is None else sel)
    groups = dict(head=[0, 1, 3, 5], body=[4, 6, 8], tail=[2, 7, 9, 10])
    loss = st.losses[cell.loss]
    rec = RunRecord(
        study=st.name, name=run_name(st, cell), cell=cell.to_dict(),
        options=loss.variant(cell.variant).options_dict, iters=2400,
        selection=SplitMetrics('selection', sel_summary, per_class, 2400),
        report=SplitMetrics('report', dict(summary), per_class, None),
        classes=CLASSES, groups=groups, train_counts=CARVED_TRAIN_PIXELS,
        curve=curve(sel_summary['mIoU']) if curve_ is None else curve_,
        wall_s=wall, train_s_per_iter=0.5)
    rec.save(str(results))
    return rec


def fake_study_records(results: Path, st) -> None:
    """Records of 10 finished runs: CE with three seeds; both Focal and BMS
    settings, the report split ranking them the other way round from the
    selection split; BMS's chosen setting with a second seed; one PAT
    setting; CB on image counts with CE's numbers."""
    iou = [float(i) for i in range(11)]
    fake_record(results, st, C('ce', 0), 40.0, 10.0, iou)
    fake_record(results, st, C('ce', 1), 42.0, 12.0, [v + 2 for v in iou],
                wall=500.0)
    fake_record(results, st, C('ce', 2), 41.0, 11.0, [v + 1 for v in iou])
    # gamma=2 has not converged (its last three evaluations span 3 points)
    fake_record(results, st, C('focal', 0, 'gamma1'), 41.5, 11.0, iou,
                sel=45.0)
    fake_record(results, st, C('focal', 0, 'gamma2'), 43.0, 11.0, iou,
                sel=44.0, curve_=curve(44.0, spread=3.0))
    # seed 1 of tau=0.5 is no sweep run: its selection number (47) must
    # not enter the choice
    fake_record(results, st, C('bms', 0, 'tau0p5'), 50.0, 30.0, iou)
    fake_record(results, st, C('bms', 0, 'tau1'), 52.0, 30.0, iou, sel=48.0)
    fake_record(results, st, C('bms', 1, 'tau0p5'), 49.0, 29.0, iou,
                sel=47.0)
    fake_record(results, st, C('pat', 0, 'tau1'), 44.0, 20.0, iou)
    # a curve too short to judge convergence
    fake_record(results, st, C('cb', 0, 'b0.9999-img'), 40.0, 10.0, iou,
                curve_=[dict(iter=1200, mIoU=20.0),
                        dict(iter=2400, mIoU=40.0)])


def raw_records(results: Path) -> list:
    return [json.loads(p.read_text())
            for p in sorted((results / 'runs').glob('*.json'))]


def expected_selection(st, raw: list) -> dict:
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


def setting_runs(raw: list, lo: str, tag: str) -> list:
    """The raw records of every seed of one setting, by seed."""
    return sorted((r for r in raw if r['cell']['loss'] == lo
                   and r['cell']['variant'] == tag),
                  key=lambda r: r['cell']['seed'])


def reported_values(raw: list, lo: str, tag: str, key: str) -> list:
    """``key`` on the report split of every seed of one setting, by seed."""
    return [r['report']['summary'][key] for r in setting_runs(raw, lo, tag)]


def chosen_settings(st, raw: list) -> dict:
    """loss -> (chosen tag, its label) of the losses with a choice."""
    return {lo: (tag, st.losses[lo].label(st.losses[lo].variant(tag)))
            for lo, (tag, _) in expected_selection(st, raw).items()}


def check_columns(table: list, expected: dict) -> None:
    """Each cell of the rows ``expected`` (label -> per column the values
    of the seeds; the first columns) is their mean ± std, bold where its
    mean is the best of its column (and the column's means differ)."""
    for j in range(len(next(iter(expected.values())))):
        means = {label: statistics.mean(v[j]) for label, v in
                 expected.items()}
        best = max(means.values()) if len(set(means.values())) > 1 else None
        for label, values in expected.items():
            text = mean_std_text(values[j])
            if means[label] == best:
                text = f'**{text}**'
            assert row(table, label)[j] == text, (table[0][j + 1], label)


def mean_std_text(values: list) -> str:
    """``mean ± sample std`` to two decimals, computed here."""
    text = f'{statistics.mean(values):.2f}'
    if len(values) > 1:
        text += f' ± {statistics.stdev(values):.2f}'
    return text


# ------------------------------------------------------ markdown readers
def section(md: str, heading: str) -> str:
    """The text of one ``## `` section of a page."""
    start = md.index(heading + '\n')
    end = md.find('\n## ', start + len(heading))
    return md[start:] if end < 0 else md[start:end]


def md_tables(text: str) -> List[List[List[str]]]:
    """Every markdown table of ``text``: its rows of cells, the header
    first (the alignment line left out)."""
    tables, current = [], None
    for line in text.splitlines():
        line = line.strip()
        if len(line) > 1 and line[0] == line[-1] == '|':
            cells = [c.strip() for c in line[1:-1].split('|')]
            if current is None:
                current = []
                tables.append(current)
            if not all(re.fullmatch(r':?-+:?', c) for c in cells):
                current.append(cells)
        else:
            current = None
    return tables


def table_after(text: str, marker: Optional[str] = None) -> list:
    """The first table of ``text`` after ``marker`` (e.g. a bold title)."""
    start = text.index(marker) if marker else 0
    tables = md_tables(text[start:])
    assert tables, f'no table after {marker!r}'
    return tables[0]


def row(table: list, label: str) -> List[str]:
    """The cells after the label of the row whose first cells, joined by
    `` | ``, are ``label``."""
    n = label.count(' | ') + 1
    found = [cells[n:] for cells in table[1:]
             if ' | '.join(cells[:n]) == label]
    assert len(found) == 1, (label, [' | '.join(c[:n]) for c in table[1:]])
    return found[0]


def labels(table: list, n: int = 1) -> List[str]:
    return [' | '.join(cells[:n]) for cells in table[1:]]


def column(table: list, name: str) -> dict:
    """Row label -> the cell of column ``name``."""
    i = table[0].index(name)
    return {cells[0]: cells[i] for cells in table[1:]}


def numbers(pattern: str, md: str) -> tuple:
    m = re.search(pattern, md)
    assert m, pattern
    return tuple(int(x) for x in m.groups())
