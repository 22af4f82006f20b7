"""Collect the grid's results from work dirs into the PAT paper's tables.

    python tools/collect_results.py [WORK_ROOT ...] [--out-dir DIR]
        [--formats md csv tex] [--tables table3 table4 table6 groups runs]

Tables (rows: losses in the grid's order; a run that is missing or has no
metrics yet is a blank cell, never an error):

* ``table3`` (per model): loss x data set: mIoU, aAcc, Dice error (Table 3);
* ``table4`` (per data set): loss x model: mIoU (Table 4);
* ``table6`` (per data set and model): per-class IoU (Table 6);
* ``groups`` (per model): loss x data set: head / body / tail mIoU;
* ``runs``: one row per run with every number, iterations and wall time.

Metrics come from the ``LongTailIoUMetric`` JSON of a run
(``<work_dir>/longtail_metrics/latest.json``) or, failing that, from the last
validation record of mmengine's ``vis_data/scalars.json`` (no per-class
values, no groups then). A run is identified by the ``grid_status.json`` that
tools/grid.py writes, or else by its mmseg-style directory name. The wall
time is ``grid_status.json``'s, or the span of the run's log files.
mIoU, aAcc, mAcc, mDice and the group mIoUs are percentages; the Dice error
is ``1 - mean Dice`` as a fraction (docs/datasets.md).
"""
import argparse
import csv
import datetime
import glob
import io
import json
import math
import os
import os.path as osp
import re
import sys
from typing import Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), 'misc'))
import grid_spec  # noqa: E402

STATUS_FILE = 'grid_status.json'
SUMMARY_KEYS = ('mIoU', 'aAcc', 'mAcc', 'mDice', 'DiceErr', 'mIoU_head',
                'mIoU_body', 'mIoU_tail')
# Column label, format, and whether larger is better (for the bold best).
METRIC_FMT = {
    'mIoU': ('mIoU', '{:.2f}', True),
    'aAcc': ('aAcc', '{:.2f}', True),
    'mAcc': ('mAcc', '{:.2f}', True),
    'mDice': ('mDice', '{:.2f}', True),
    'DiceErr': ('DiceErr', '{:.4f}', False),
    'mIoU_head': ('head', '{:.2f}', True),
    'mIoU_body': ('body', '{:.2f}', True),
    'mIoU_tail': ('tail', '{:.2f}', True),
}
RUN_STAMP = re.compile(r'\d{8}_\d{6}')  # mmengine's per-launch log folder
LOG_TIME = re.compile(r'^(\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2})')
SEED_SUFFIX = r'(?:_seed(\d+))?'  # study runs: <config name>_seed<N>


# ----------------------------------------------------------------- reading
def _read_json(path: str) -> Optional[dict]:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def find_run_dirs(roots: Sequence[str]) -> List[str]:
    """Directories holding one run each (a grid status, checkpoints, metrics
    or mmengine's ``<timestamp>/`` log folders), searched below ``roots``;
    tools/grid.py's ``_grid`` folder and the runs' own subfolders are not
    entered."""
    found = []
    for root in roots:
        for path, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d != '_grid')
            if (STATUS_FILE in files or 'last_checkpoint' in files
                    or 'longtail_metrics' in dirs
                    or any(RUN_STAMP.fullmatch(d) for d in dirs)):
                found.append(path)
                dirs[:] = []
    return found


def identify(run_dir: str, status: Optional[dict]) -> Optional[Tuple]:
    """(dataset, model, loss) of a run: from its grid status, else from the
    mmseg-style name ``{loss}_{model}_..._{dataset}-{crop}``."""
    if status and status.get('cell'):
        c = status['cell']
        return c['dataset'], c['model'], c['loss']
    name = osp.basename(osp.normpath(run_dir))
    for lk, loss in grid_spec.LOSSES.items():
        for mk, model in grid_spec.MODELS.items():
            if not name.startswith(f'{loss.name}_{model.name}_'):
                continue
            for dk, ds in grid_spec.DATASETS.items():
                if re.search(rf'_{re.escape(ds.name)}-\d+x\d+{SEED_SUFFIX}$',
                             name):
                    return dk, mk, lk
    return None


def run_seed(run_dir: str, status: Optional[dict]) -> Optional[int]:
    """The seed of a study run (its grid status, else the ``_seed<N>``
    ending of its name); None for runs without one."""
    seed = ((status or {}).get('cell') or {}).get('seed')
    if seed is not None:
        return int(seed)
    m = re.search(rf'{SEED_SUFFIX}$', osp.basename(osp.normpath(run_dir)))
    return int(m.group(1)) if m and m.group(1) else None


def _scalar_records(run_dir: str):
    """(file, record) for every line of the run's mmengine scalars.json
    files (one per launch); unreadable lines are skipped."""
    for path in glob.glob(osp.join(run_dir, '*', 'vis_data', 'scalars.json')):
        with open(path) as f:
            for line in f:
                try:
                    yield path, json.loads(line)
                except ValueError:
                    continue


def train_seconds_per_iter(run_dir: str) -> Optional[float]:
    """Mean training ``time`` per iteration in mmengine's scalars.json
    (each record averages the logger interval; data loading included)."""
    times = [float(rec['time']) for _, rec in _scalar_records(run_dir)
             if 'time' in rec and 'loss' in rec and 'mIoU' not in rec]
    return sum(times) / len(times) if times else None


def _scalars_metrics(run_dir: str) -> Optional[dict]:
    """Last validation record of mmengine's scalars.json files."""
    best, best_key = None, None
    for path, rec in _scalar_records(run_dir):
        if 'mIoU' not in rec:
            continue
        key = (rec.get('step', 0), path)
        if best_key is None or key >= best_key:
            best, best_key = rec, key
    if best is None:
        return None
    summary = {k: float(best[k]) for k in SUMMARY_KEYS if k in best}
    if 'DiceErr' not in summary and 'mDice' in summary:
        summary['DiceErr'] = 1.0 - summary['mDice'] / 100
    return dict(summary=summary, per_class=None, classes=None,
                iter=best.get('step'), source='scalars.json')


def log_wall_time(run_dir: str) -> Optional[float]:
    """Seconds spanned by the run's mmengine logs (resumed runs: summed)."""
    total = None
    for path in glob.glob(osp.join(run_dir, '*', '*.log')):
        first = last = None
        with open(path, errors='replace') as f:
            for line in f:
                m = LOG_TIME.match(line)
                if m:
                    last = m.group(1)
                    first = first or last
        if first:
            fmt = '%Y/%m/%d %H:%M:%S'
            span = (datetime.datetime.strptime(last, fmt) -
                    datetime.datetime.strptime(first, fmt)).total_seconds()
            total = (total or 0.0) + span
    return total


def last_checkpoint_iter(run_dir: str) -> Optional[int]:
    path = osp.join(run_dir, 'last_checkpoint')
    if not osp.isfile(path):
        return None
    with open(path) as f:
        m = re.search(r'iter_(\d+)\.pth', f.read())
    return int(m.group(1)) if m else None


def read_run(run_dir: str) -> dict:
    """Everything known about one run; missing pieces are None."""
    status = _read_json(osp.join(run_dir, STATUS_FILE))
    cell = identify(run_dir, status)
    record = dict(
        work_dir=run_dir, name=osp.basename(osp.normpath(run_dir)),
        cell=cell, status=(status or {}).get('status'),
        wall_s=(status or {}).get('wall_s'),
        iters=last_checkpoint_iter(run_dir), summary={}, per_class=None,
        classes=None, metrics_source=None, seed=run_seed(run_dir, status),
        groups=None, train_counts=None, metric_iter=None,
        loadavg=[(status or {}).get('loadavg_start'),
                 (status or {}).get('loadavg_end')],
        cfg_options=(status or {}).get('cfg_options'))
    if record['wall_s'] is None:
        record['wall_s'] = log_wall_time(run_dir)
    metrics = _read_json(
        osp.join(run_dir, 'longtail_metrics', 'latest.json'))
    if metrics and metrics.get('summary'):
        record.update(
            summary={k: v for k, v in metrics['summary'].items()
                     if v is not None},
            per_class=(metrics.get('per_class') or {}).get('IoU'),
            classes=metrics.get('classes'),
            groups=metrics.get('groups'),
            train_counts=metrics.get('train_counts'),
            metric_iter=metrics.get('iter'),
            metrics_source='longtail_metrics')
    else:
        fallback = _scalars_metrics(run_dir)
        if fallback:
            record.update(summary=fallback['summary'],
                          metrics_source=fallback['source'])
    if record['status'] is None:
        record['status'] = 'done' if record['summary'] else 'incomplete'
    return record


def collect(roots: Sequence[str]) -> List[dict]:
    return [read_run(d) for d in find_run_dirs(roots)]


# ----------------------------------------------------------------- tables
class Table:
    """Rows x (group, column) cells of floats (None: blank).

    ``groups`` is a list of ``(group label, [column keys])``; ``columns``
    maps a column key to its label; ``fmt`` to ``(format, larger_better)``.
    """

    def __init__(self, name: str, title: str, row_label: str,
                 groups: List[Tuple[str, List[str]]],
                 col_labels: Dict[str, str],
                 fmt: Dict[str, Tuple[str, Optional[bool]]]):
        self.name, self.title, self.row_label = name, title, row_label
        self.groups, self.col_labels, self.fmt = groups, col_labels, fmt
        self.rows: List[Tuple[str, Dict[Tuple[str, str], object]]] = []

    def add_row(self, label: str, values: Dict[Tuple[str, str], object]):
        self.rows.append((label, values))

    @property
    def keys(self) -> List[Tuple[str, str]]:
        return [(g, c) for g, cols in self.groups for c in cols]

    def _best(self) -> Dict[Tuple[str, str], float]:
        best = {}
        for key in self.keys:
            larger = self.fmt[key[1]][1]
            vals = [v[key] for _, v in self.rows
                    if isinstance(v.get(key), float) and math.isfinite(v[key])]
            if larger is not None and len(vals) > 1:
                best[key] = max(vals) if larger else min(vals)
        return best

    def cell(self, values, key) -> str:
        v = values.get(key)
        if v is None:
            return ''
        if isinstance(v, float):
            return self.fmt[key[1]][0].format(v) if math.isfinite(v) else ''
        return str(v)

    def flat_header(self) -> List[str]:
        return [self.row_label] + [
            f'{g} {self.col_labels[c]}'.strip() for g, c in self.keys
        ]

    def formatted_rows(self, bold, escape=str) -> List[List[str]]:
        """Rows of text cells; the best value of a column through ``bold``."""
        best = self._best()
        rows = []
        for label, values in self.rows:
            cells = [escape(label)]
            for key in self.keys:
                text = escape(self.cell(values, key))
                if text and best.get(key) == values.get(key):
                    text = bold(text)
                cells.append(text)
            rows.append(cells)
        return rows

    def to_markdown(self) -> str:
        return f'**{self.title}**\n\n' + _md_table(
            self.flat_header(), self.formatted_rows(lambda t: f'**{t}**'))

    def to_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator='\n')
        writer.writerow(self.flat_header())
        for label, values in self.rows:
            writer.writerow([label] +
                            [self.cell(values, k) for k in self.keys])
        return buf.getvalue()

    def to_latex(self) -> str:

        def esc(text: str) -> str:
            return re.sub(r'([&%$#_{}])', r'\\\1', str(text))

        n = len(self.keys)
        lines = [
            '% ' + self.title, r'\begin{tabular}{l' + 'r' * n + '}',
            r'\toprule'
        ]
        if any(g for g, _ in self.groups):
            top = [''] + [
                rf'\multicolumn{{{len(cols)}}}{{c}}{{{esc(g)}}}'
                for g, cols in self.groups
            ]
            lines.append(' & '.join(top) + r' \\')
            col = 2
            rules = []
            for _, cols in self.groups:
                rules.append(rf'\cmidrule(lr){{{col}-{col + len(cols) - 1}}}')
                col += len(cols)
            lines.append(' '.join(rules))
        lines.append(' & '.join(
            [esc(self.row_label)] +
            [esc(self.col_labels[c]) for _, c in self.keys]) + r' \\')
        lines.append(r'\midrule')
        for cells in self.formatted_rows(lambda t: rf'\textbf{{{t}}}', esc):
            lines.append(' & '.join(cells) + r' \\')
        lines += [r'\bottomrule', r'\end{tabular}']
        return '\n'.join(lines) + '\n'

    def render(self, fmt: str) -> str:
        return {'md': self.to_markdown, 'csv': self.to_csv,
                'tex': self.to_latex}[fmt]()


def _title(table: dict, key: str) -> str:
    return table[key].title if key in table else key


def _axis(runs: List[dict], index: int, table: dict) -> List[str]:
    """Keys present on one axis, in the grid's order, then unknown ones."""
    present = {r['cell'][index] for r in runs if r['cell']}
    return [k for k in table if k in present] + sorted(present - set(table))


def _by_cell(runs: List[dict]) -> Dict[Tuple, dict]:
    cells = {}
    for r in runs:
        if r['cell']:
            # several runs of one cell (e.g. two work roots): the newest wins
            cells[tuple(r['cell'])] = r
    return cells


def _loss_rows(runs) -> List[str]:
    """Every loss of the grid, so missing losses show as blank rows."""
    return list(grid_spec.LOSSES) + [
        k for k in _axis(runs, 2, grid_spec.LOSSES)
        if k not in grid_spec.LOSSES
    ]


def summary_table(runs: List[dict], model: str, metrics: Sequence[str],
                  name: str, title: str) -> Table:
    datasets = _axis(runs, 0, grid_spec.DATASETS)
    cells = _by_cell(runs)
    groups = [(_title(grid_spec.DATASETS, d), list(metrics))
              for d in datasets]
    table = Table(name, title, 'Loss', groups,
                  {m: METRIC_FMT[m][0] for m in metrics},
                  {m: (METRIC_FMT[m][1], METRIC_FMT[m][2]) for m in metrics})
    for loss in _loss_rows(runs):
        values = {}
        for d in datasets:
            run = cells.get((d, model, loss))
            for m in metrics:
                v = run['summary'].get(m) if run else None
                values[(_title(grid_spec.DATASETS, d), m)] = (
                    None if v is None else float(v))
        table.add_row(_title(grid_spec.LOSSES, loss), values)
    return table


def table3(runs, model) -> Table:
    return summary_table(
        runs, model, ('mIoU', 'aAcc', 'DiceErr'), f'table3_{model}',
        f'Table 3: loss x data set, {_title(grid_spec.MODELS, model)} '
        '(mIoU, aAcc in %; Dice error = 1 - mDice)')


def groups_table(runs, model) -> Table:
    return summary_table(
        runs, model, ('mIoU_head', 'mIoU_body', 'mIoU_tail'),
        f'groups_{model}',
        f'Head / body / tail mIoU (%), {_title(grid_spec.MODELS, model)}')


def table4(runs, dataset) -> Table:
    models = _axis(runs, 1, grid_spec.MODELS)
    cells = _by_cell(runs)
    cols = [_title(grid_spec.MODELS, m) for m in models]
    table = Table(
        f'table4_{dataset}',
        f'Table 4: loss x model, {_title(grid_spec.DATASETS, dataset)} '
        '(mIoU %)', 'Loss', [('', cols)], {c: c for c in cols},
        {c: ('{:.2f}', True) for c in cols})
    for loss in _loss_rows(runs):
        values = {}
        for m, c in zip(models, cols):
            run = cells.get((dataset, m, loss))
            v = run['summary'].get('mIoU') if run else None
            values[('', c)] = None if v is None else float(v)
        table.add_row(_title(grid_spec.LOSSES, loss), values)
    return table


def table6(runs, dataset, model) -> Optional[Table]:
    cells = _by_cell(runs)
    classes = None
    for loss in _loss_rows(runs):
        run = cells.get((dataset, model, loss))
        if run and run['classes'] and run['per_class']:
            classes = run['classes']
            break
    if classes is None:
        return None
    table = Table(
        f'table6_{dataset}_{model}',
        f'Table 6: per-class IoU (%), {_title(grid_spec.DATASETS, dataset)}, '
        f'{_title(grid_spec.MODELS, model)}', 'Loss', [('', list(classes))],
        {c: c for c in classes}, {c: ('{:.2f}', True) for c in classes})
    for loss in _loss_rows(runs):
        run = cells.get((dataset, model, loss))
        values = {}
        if run and run['per_class'] and run['classes'] == classes:
            for c, v in zip(classes, run['per_class']):
                values[('', c)] = None if v is None else float(v)
        table.add_row(_title(grid_spec.LOSSES, loss), values)
    return table


def runs_table(runs: List[dict]) -> Table:
    metric_cols = list(SUMMARY_KEYS)
    cols = ['dataset', 'model', 'loss', 'status', 'iters'] + metric_cols + [
        'wall', 'work_dir'
    ]
    labels = {c: METRIC_FMT[c][0] if c in METRIC_FMT else c for c in cols}
    fmt = {c: (METRIC_FMT[c][1], None) if c in METRIC_FMT else ('{}', None)
           for c in cols}
    fmt['wall'] = ('{}', None)
    table = Table('runs', 'All runs', 'run', [('', cols)], labels, fmt)
    order = {k: i for i, k in enumerate(grid_spec.all_cells())}

    def sort_key(r):
        cell = grid_spec.Cell(*r['cell']) if r['cell'] else None
        return (order.get(cell, len(order)), r['name'])

    for r in sorted(runs, key=sort_key):
        d, m, lo = r['cell'] or ('', '', '')
        values = {('', 'dataset'): d, ('', 'model'): m, ('', 'loss'): lo,
                  ('', 'status'): r['status'], ('', 'iters'): r['iters'],
                  ('', 'wall'): format_duration(r['wall_s']),
                  ('', 'work_dir'): r['work_dir']}
        for k in metric_cols:
            v = r['summary'].get(k)
            values[('', k)] = None if v is None else float(v)
        table.add_row(r['name'], values)
    return table


def format_duration(seconds: Optional[float]) -> Optional[str]:
    if seconds is None:
        return None
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f'{h}:{m:02d}:{s:02d}' if h else f'{m}:{s:02d}'


def build_tables(runs: List[dict], which: Sequence[str]) -> List[Table]:
    tables = []
    models = _axis(runs, 1, grid_spec.MODELS)
    datasets = _axis(runs, 0, grid_spec.DATASETS)
    if 'table3' in which:
        tables += [table3(runs, m) for m in models]
    if 'table4' in which:
        tables += [table4(runs, d) for d in datasets]
    if 'table6' in which:
        tables += [t for d in datasets for m in models
                   if (t := table6(runs, d, m)) is not None]
    if 'groups' in which:
        tables += [groups_table(runs, m) for m in models]
    if 'runs' in which:
        tables.append(runs_table(runs))
    return tables


# ------------------------------------------------------------- study page
PAGE_METRICS = ('mIoU', 'aAcc', 'mDice', 'mIoU_head', 'mIoU_body',
                'mIoU_tail')


def _mean_std(values: Sequence[float]) -> Tuple[float, Optional[float]]:
    """Mean and sample standard deviation (None for a single value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


def _fmt_ms(values: Sequence[float], fmt: str = '{:.2f}') -> str:
    if not values:
        return ''
    mean, std = _mean_std(values)
    text = fmt.format(mean)
    return text if std is None else f'{text} ± {fmt.format(std)}'


def _best_mean(columns: Sequence[Sequence[float]]) -> Optional[float]:
    """The largest mean of a column, None when fewer than two distinct
    means exist (nothing to single out)."""
    means = {_mean_std(v)[0] for v in columns if v}
    return max(means) if len(means) > 1 else None


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]],
              left: int = 1) -> str:
    """Markdown table; the first ``left`` columns left-aligned."""
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '---|' * left + '---:|' * (len(header) - left)]
    lines += ['| ' + ' | '.join(r) + ' |' for r in rows]
    return '\n'.join(lines) + '\n'


def _rel(path: str) -> str:
    """Path relative to the repository where it is inside it or beside it
    (``../shared/...``), so pages name no machine's absolute paths."""
    path = osp.abspath(path)
    rel = osp.relpath(path, grid_spec.REPO_ROOT)
    return rel if not rel.startswith(osp.join('..', '..')) else path


def study_runs(study, runs: List[dict]) -> Dict[grid_spec.StudyCell, dict]:
    """The study's planned runs -> what exists of them (by work dir name);
    planned runs without a work dir are absent."""
    by_name = {r['name']: r for r in runs}
    out = {}
    for cell in grid_spec.study_cells(study):
        run = by_name.get(grid_spec.study_config_name(study, cell))
        if run is not None:
            out[cell] = run
    return out


def _finished(run: Optional[dict]) -> bool:
    return bool(run and run['status'] == 'done' and run['summary'])


def _study_setup(study, num_images: Optional[int]) -> List[Tuple[str, str]]:
    """(row, text) pairs describing the study, read from its configs."""
    from mmengine.config import Config
    data = Config.fromfile(study.data_base)
    sched = Config.fromfile(study.schedule_base)
    batch, crop = int(data.train_dataloader.batch_size), tuple(data.crop_size)
    test_scale = next((t['scale'] for t in data.test_pipeline
                       if t.get('type') == 'Resize'), None)
    opt = sched.optim_wrapper.optimizer
    iters = int(sched.train_cfg.max_iters)
    epochs = (f' (about {iters * batch / num_images:.1f} epochs of '
              f'{num_images} images)' if num_images else '')
    extra = ', '.join(
        study.loss_table[lo].title + ' ' + ', '.join(
            map(str, study.seeds_of(lo)))
        for lo in study.losses if len(study.seeds_of(lo)) > len(study.seeds))
    seeds = (f'{", ".join(map(str, study.seeds))} for every loss' +
             (f'; {extra}' if extra else ''))
    models = '; '.join(f'{m.title}: `{_rel(grid_spec.base_path(m.base))}`'
                       for m in study.models.values())
    scale = (f'images resized to {test_scale[0]}x{test_scale[1]} (w x h); '
             if test_scale else '')
    return [
        ('data', f'{study.dataset_title}: train on `train`, evaluate on '
         f'`val`, data root `{_rel(study.data_root)}`'),
        ('input', f'{scale}training crops {crop[0]}x{crop[1]} (h x w), '
         'batch ' + str(batch) + f'; `{_rel(study.data_base)}`; predictions '
         'are scored at the labels\' own resolution'),
        ('models', models),
        ('schedule', f'{opt.type} lr {opt.lr}, momentum '
         f'{opt.get("momentum", "-")}, weight decay '
         f'{opt.get("weight_decay", "-")}, poly decay; {iters} iterations'
         f'{epochs}, from scratch; `{_rel(study.schedule_base)}`; the same '
         'schedule for every loss'),
        ('seeds', seeds),
        ('losses', ', '.join(study.loss_table[lo].title
                             for lo in study.losses
                             if lo in grid_spec.LOSSES) +
         ': `configs/_base_/losses/<loss>.py`' + ''.join(
             f'; {study.loss_table[lo].title}: '
             f'`{_rel(grid_spec.base_path(study.loss_table[lo].base))}`'
             + ''.join(f' with `{k}={v!r}`'
                       for k, v in study.loss_table[lo].options)
             for lo in study.losses if lo not in grid_spec.LOSSES) +
         '; on the decode head (counted losses get the class statistics); '
         'the auxiliary head keeps CE'),
    ]


def _loss_cfg(study, loss: str) -> dict:
    """The loss_decode a study loss trains with (base + options)."""
    from mmengine.config import Config
    cfg = Config.fromfile(grid_spec.base_path(
        study.loss_table[loss].base)).loss_decode.to_dict()
    cfg.update(dict(study.loss_table[loss].options))
    return cfg


def _weight_notes(study, stats: dict, classes) -> List[str]:
    """What the class-balanced weights of the study's CB-type losses are
    on its statistics: uniform weights make CB plain CE."""
    import numpy as np
    from mmseg_longtail.models.losses.base import (effective_number_weights,
                                                   resolve_beta)
    out = []
    for lo in study.losses:
        cfg = _loss_cfg(study, lo)
        if cfg.get('type') != 'ClassBalancedLoss':
            continue
        kind = cfg.get('count_type', 'pixel')
        counts = stats.get(f'{kind}_counts')
        if not counts:
            continue
        beta = resolve_beta(cfg.get('beta', 0.9999), counts)
        w = effective_number_weights(np.asarray(counts, float), beta)
        ratio = float(w.max() / w.min())
        text = (f'{study.loss_table[lo].title}: beta = {beta:.10g} on '
                f'{kind} counts gives class weights with max/min ratio ')
        if ratio < 1.01:
            text += (f'{ratio:.6f}: uniform but for rounding, so the loss is '
                     'its unweighted base (' + (
                         'Focal' if cfg.get('base') == 'focal' else 'CE') +
                     ').')
        else:
            text += f'{ratio:.3g} (' + ', '.join(
                f'{c} {x:.2f}' for c, x in zip(classes or [], w)) + ').'
        out.append(text)
    return out


def _identical_losses(study, done) -> List[str]:
    """Loss pairs whose finished runs gave the same numbers (same model and
    seed, every summary metric)."""
    out = []
    losses = list(study.losses)
    for i, a in enumerate(losses):
        for b in losses[i + 1:]:
            twins = [(run, done.get(c._replace(loss=b)))
                     for c, run in done.items() if c.loss == a]
            pairs = [(x, y) for x, y in twins if y is not None]
            if pairs and all(x['summary'] == y['summary'] for x, y in pairs):
                n = len(pairs)
                out.append(f'{study.loss_table[b].title} and '
                           f'{study.loss_table[a].title} gave identical '
                           'metrics in ' + ('the one paired run' if n == 1
                                            else f'all {n} paired runs') +
                           ' (same model and seed).')
    return out


def _noise_sentences(study, model: str, values: Dict[str, List[float]],
                     metric_label: str) -> List[str]:
    """Sentences comparing each loss with CE against the seed noise."""
    multi = {lo: v for lo, v in values.items() if len(v) > 1}
    if not multi:
        return []
    pooled = math.sqrt(sum(_mean_std(v)[1] ** 2 for v in multi.values()) /
                       len(multi))
    # two runs that differ only in the seed differ by sqrt(2) sigma (std)
    noise = math.sqrt(2) * pooled
    title = study.models[model].title
    names = ', '.join(study.loss_table[lo].title for lo in multi)
    out = [f'**{title}, {metric_label}:** seed std σ = {pooled:.2f} points '
           f'(pooled over {names}); two runs differing only in the seed '
           f'differ by about √2σ = {noise:.2f}.']
    base = values.get('ce')
    if base:
        ce = _mean_std(base)[0]
        small, large = [], []
        for lo, v in values.items():
            if lo == 'ce' or not v:
                continue
            d = _mean_std(v)[0] - ce
            item = f'{study.loss_table[lo].title} ({d:+.2f})'
            (small if abs(d) < noise else large).append(item)
        if small:
            out.append('Differences from CE smaller than the seed noise '
                       f'(not evidence either way): {", ".join(small)}.')
        if large:
            out.append('Larger than the seed noise: '
                       f'{", ".join(large)}.')
    return out


def study_page(study, runs: List[dict], page: str,
               roots: Sequence[str]) -> str:
    """Write the study's results page (markdown) and its per-class IoU
    plots (PNG, next to the page); returns the markdown."""
    import numpy as np
    cells = grid_spec.study_cells(study)
    found = study_runs(study, runs)
    done = {c: r for c, r in found.items() if _finished(r)}
    losses, models = list(study.losses), list(study.models)

    def values(model, loss, key):
        return [done[c]['summary'][key] for c in cells
                if c.model == model and c.loss == loss and c in done
                and done[c]['summary'].get(key) is not None]

    # classes, counts and groups: a finished run's metric JSON, else the
    # study's statistics file
    ref = next((r for r in done.values() if r['classes']), None)
    stats = _read_json(study.class_stats_file) or {}
    classes = (ref or {}).get('classes') or stats.get('classes')
    counts = (ref or {}).get('train_counts') or stats.get('pixel_counts')
    groups = (ref or {}).get('groups')
    if groups is None and counts:
        from mmseg_longtail.utils import frequency_groups
        groups = frequency_groups(counts)
    group_of = {i: g for g, ids in (groups or {}).items() for i in ids}

    page_dir = osp.dirname(osp.abspath(page))
    stem = osp.splitext(osp.basename(page))[0]
    cfg_opts = sorted({tuple(r.get('cfg_options') or ())
                       for r in found.values()})
    spec_cmd = study.command()
    run_cmd = spec_cmd
    spec_root = grid_spec.load_study(study.path,
                                     study.variant == 'full_res').work_root
    if study.work_root != spec_root:
        run_cmd += f' --work-root {_rel(study.work_root)}'
    if len(cfg_opts) == 1 and cfg_opts[0]:
        run_cmd += ' --cfg-options ' + ' '.join(cfg_opts[0])
    page_cmd = (study.command('tools/collect_results.py') +
                (f' {" ".join(_rel(r) for r in roots)}'
                 if [osp.abspath(r) for r in roots] != [spec_root] else '')
                + f' --page {_rel(page)}')
    now = datetime.datetime.now().strftime('%Y-%m-%d %H:%M')
    missing = [c for c in cells if c not in done]

    md = [f'# {study.title}', '',
          '<!-- generated by tools/collect_results.py --page; edit the '
          'generator, not this file -->', '',
          f'{len(done)} of {len(cells)} runs finished ({now}; work dirs '
          f'under `{_rel(study.work_root)}`). ' + (
              'Runs that are missing are blank here and listed as "not run '
              'yet" under [Runs](#runs); regenerate the page at any time:'
              if missing else 'Regenerate the page from the work dirs:'),
          '',
          '```bash', page_cmd, '```', '',
          'Reproduce every run (resumable: finished runs are skipped, '
          'interrupted ones resume from their last checkpoint):', '',
          '```bash', run_cmd, '```', '']
    if len(cfg_opts) > 1:
        md += ['Note: the runs used different `--cfg-options`: ' + '; '.join(
            ' '.join(o) or '(none)' for o in cfg_opts) + '.', '']
    if study.variant == 'default':
        md += ['The same study at full resolution on a GPU: add '
               '`--full-res` to both commands (the spec\'s `full_res` '
               'overrides).', '']
    num_images = stats.get('num_images')
    md += ['## Setup', '', _md_table(
        ['', ''], [[k, v] for k, v in _study_setup(study, num_images)], 2)]
    if groups and classes:
        md += ['Frequency groups (terciles of training pixels): ' + '; '.join(
            f'{g} = ' + ', '.join(classes[i] for i in groups[g])
            for g in ('head', 'body', 'tail')) + '.', '']

    # --- results
    md += ['## Results', '',
           'Validation after the last iteration, mean over the finished '
           'seeds (± sample std where more than one). mIoU, aAcc, mDice and '
           'the head / body / tail mIoU in %; the best mean of each column '
           'in bold.', '']
    header = ['Loss'] + [study.models[m].title for m in models]
    best = {m: _best_mean([values(m, lo, 'mIoU') for lo in losses])
            for m in models}
    rows = []
    for lo in losses:
        row = [study.loss_table[lo].title]
        for m in models:
            v = values(m, lo, 'mIoU')
            text = _fmt_ms(v)
            if v and _mean_std(v)[0] == best[m]:
                text = f'**{text}**'
            row.append(text)
        rows.append(row)
    md += ['**mIoU (%), loss x model**', '', _md_table(header, rows)]
    for m in models:
        header = ['Loss'] + [METRIC_FMT[k][0] for k in PAGE_METRICS] + [
            'seeds']
        col_best = {k: _best_mean([values(m, lo, k) for lo in losses])
                    for k in PAGE_METRICS}
        rows = []
        for lo in losses:
            row = [study.loss_table[lo].title]
            for k in PAGE_METRICS:
                v = values(m, lo, k)
                text = _fmt_ms(v)
                if v and _mean_std(v)[0] == col_best[k]:
                    text = f'**{text}**'
                row.append(text)
            seeds = [c.seed for c in cells if c.model == m and c.loss == lo
                     and c in done]
            row.append(', '.join(map(str, seeds)))
            rows.append(row)
        md += [f'**{study.models[m].title}**', '', _md_table(header, rows)]

    notes = _weight_notes(study, {'pixel_counts': counts, **stats},
                          classes) + _identical_losses(study, done)
    if notes:
        md += ['Class-balanced weights on this study\'s statistics (computed '
               'by the loss code from the statistics file), and losses that '
               'trained identically:', ''] + [f'- {n}' for n in notes] + ['']

    # --- seed noise
    md += ['## Seed spread', '']
    rows = []
    for m in models:
        for lo in losses:
            seeds = [c for c in cells if c.model == m and c.loss == lo]
            if len(seeds) < 2:
                continue
            per = [f'{c.seed}: {done[c]["summary"]["mIoU"]:.2f}'
                   if c in done else f'{c.seed}: not run yet' for c in seeds]
            rows.append([study.models[m].title, study.loss_table[lo].title,
                         ', '.join(per), _fmt_ms(values(m, lo, 'mIoU')),
                         _fmt_ms(values(m, lo, 'mIoU_tail'))])
    if rows:
        md += [_md_table(['Model', 'Loss', 'mIoU per seed', 'mIoU mean ± std',
                          'tail mIoU mean ± std'], rows, 3)]
    paragraphs = []
    for m in models:
        for key, label in (('mIoU', 'mIoU'), ('mIoU_tail', 'tail mIoU')):
            sentences = _noise_sentences(
                study, m, {lo: values(m, lo, key) for lo in losses}, label)
            if sentences:
                paragraphs.append('- ' + ' '.join(sentences))
    md += (paragraphs + [''] if paragraphs else [
        'No loss has two finished seeds yet, so the seed noise is unknown: '
        'read single-seed differences with care.', ''])

    # --- per class
    if classes:
        order = (sorted(range(len(classes)), key=lambda i: -counts[i])
                 if counts else list(range(len(classes))))
        total = float(sum(counts)) if counts else None
        md += ['## Per-class IoU', '',
               'IoU (%) per class, mean over the finished seeds; classes '
               'from the most to the least frequent in the training pixels '
               '(share and group H / B / T in the header).', '']
        head = ['Loss'] + [
            f'{classes[i]} ({group_of.get(i, "-")[:1].upper()}'
            + (f', {100 * counts[i] / total:.1f}%' if total else '') + ')'
            for i in order]
        plot_mod = None
        for m in models:
            rows, records, names = [], [], []
            for lo in losses:
                runs_ = [done[c] for c in cells if c.model == m
                         and c.loss == lo and c in done and done[c][
                             'per_class'] and done[c]['classes'] == classes]
                per = []
                for i in range(len(classes)):
                    vals = [r['per_class'][i] for r in runs_
                            if r['per_class'][i] is not None]
                    per.append(sum(vals) / len(vals) if vals else None)
                rows.append([study.loss_table[lo].title] + [
                    '' if per[i] is None else f'{per[i]:.2f}' for i in order])
                if runs_:
                    records.append(dict(
                        classes=classes, per_class=dict(IoU=per),
                        summary=dict(mIoU=_mean_std(values(m, lo,
                                                           'mIoU'))[0])))
                    names.append(study.loss_table[lo].title)
            md += [f'**{study.models[m].title}**', '', _md_table(head, rows)]
            if records and counts:
                if plot_mod is None:
                    sys.path.insert(0, osp.join(osp.dirname(
                        osp.abspath(__file__)), 'analysis_tools'))
                    import plot_class_iou as plot_mod
                png = f'{stem}_class_iou_{m}.png'
                plot_mod.plot(records, names, np.asarray(counts, float), 'IoU',
                              osp.join(page_dir, png),
                              f'{study.dataset_title}, '
                              f'{study.models[m].title}: IoU vs training '
                              'share (mean over seeds)')
                md += [f'![{study.models[m].title}: per-class IoU against '
                       f'training frequency]({png})', '']

    # --- runs
    md += ['## Runs', '',
           'Wall time: tools/grid.py\'s record (start-up, training, '
           'validation; summed over resumed attempts). Train s/iter: mean '
           'of mmengine\'s per-iteration `time` (data loading included). '
           'Load: the machine\'s 1-minute load average at the start / end '
           'of the run (2 cores here; above 2 means other processes '
           'competed).', '']
    rows, walls = [], []
    for c in cells:
        r = found.get(c)
        name = grid_spec.study_config_name(study, c)
        if r is None:
            rows.append([name, study.models[c.model].title,
                         study.loss_table[c.loss].title, str(c.seed),
                         'not run yet', '', '', '', '', ''])
            continue
        spi = train_seconds_per_iter(r['work_dir'])
        load = '/'.join(f'{x[0]:.1f}' if x else '?' for x in r['loadavg'])
        if r['status'] == 'done' and r['wall_s']:
            walls.append(r['wall_s'])
        status = r['status'] if r['status'] != 'running' else (
            'running or interrupted')
        rows.append([name, study.models[c.model].title,
                     study.loss_table[c.loss].title, str(c.seed), status,
                     str(r['iters'] or ''), format_duration(r['wall_s']) or '',
                     f'{spi:.2f}' if spi else '', load,
                     f'{r["summary"]["mIoU"]:.2f}' if 'mIoU' in r['summary']
                     else ''])
    md += [_md_table(['Run (work dir)', 'Model', 'Loss', 'Seed', 'Status',
                      'Iters', 'Wall', 'Train s/iter', 'Load', 'mIoU'],
                     rows, 5)]
    if walls:
        md += [f'Finished runs took {format_duration(sum(walls))} in all, '
               f'{format_duration(sum(walls) / len(walls))} on average '
               f'(min {format_duration(min(walls))}, max '
               f'{format_duration(max(walls))})' + (
                   f'; the {len(missing)} remaining runs would take about '
                   f'{format_duration(len(missing) * sum(walls) / len(walls))}'
                   ' at that rate.' if missing else '.'), '']
    text = '\n'.join(md)
    os.makedirs(page_dir, exist_ok=True)
    with open(page, 'w') as f:
        f.write(text)
    return text


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description='Collect grid results into the PAT paper\'s tables',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__)
    parser.add_argument('roots', nargs='*', default=[],
                        help='work roots to search (default: work_dirs/grid, '
                        "or the --study's work_root)")
    parser.add_argument('--out-dir', help='write one file per table and '
                        'format here')
    parser.add_argument('--formats', nargs='+', default=['md', 'csv', 'tex'],
                        choices=['md', 'csv', 'tex'],
                        help='formats written to --out-dir')
    parser.add_argument(
        '--tables', nargs='+',
        default=['table3', 'table4', 'table6', 'groups', 'runs'],
        choices=['table3', 'table4', 'table6', 'groups', 'runs'])
    parser.add_argument('--print-format', default='md',
                        choices=['md', 'csv', 'tex', 'none'],
                        help='format printed to stdout')
    parser.add_argument('--study', metavar='SPEC',
                        help='a study spec (configs/camvid_study/'
                        "study_cpu.py): roots default to its work_root")
    parser.add_argument('--full-res', action='store_true',
                        help="with --study: the spec's full-resolution "
                        'variant')
    parser.add_argument('--page', nargs='?', const='', metavar='OUT.md',
                        help="with --study: write the study's results page "
                        "(default: the spec's page) and its plots, instead "
                        'of the tables')
    args = parser.parse_args(argv)

    study = None
    if args.study:
        study = grid_spec.load_study(args.study, args.full_res)
        if not args.roots:
            args.roots = [study.work_root]
            if args.page is None:
                print(f'(--study: reading {study.work_root})')
    elif args.page is not None or args.full_res:
        parser.error('--page and --full-res need --study')
    if not args.roots:
        args.roots = ['work_dirs/grid']
    runs = collect(args.roots)
    if args.page is not None:
        page = args.page or study.page
        if not page:
            parser.error('the spec names no page: give --page OUT.md')
        if study.work_root not in [osp.abspath(r) for r in args.roots]:
            # the roots are another copy of the study: take them as its
            # work root (run names and commands)
            root = osp.abspath(args.roots[0])
            stats = study.class_stats_file
            if stats == osp.join(study.work_root, 'class_stats.json'):
                stats = osp.join(root, 'class_stats.json')
            study = study._replace(work_root=root, class_stats_file=stats)
        study_page(study, runs, page, args.roots)
        done = sum(_finished(r) for r in study_runs(study, runs).values())
        print(f'wrote {page} ({done} of {len(grid_spec.study_cells(study))} '
              'runs finished)')
        return 0
    tables = build_tables(runs, args.tables)
    if args.print_format != 'none':
        print(f'{len(runs)} runs under {", ".join(args.roots)}\n')
        for t in tables:
            print(t.render(args.print_format))
    if args.out_dir:
        os.makedirs(args.out_dir, exist_ok=True)
        for t in tables:
            for fmt in args.formats:
                with open(osp.join(args.out_dir, f'{t.name}.{fmt}'), 'w') as f:
                    f.write(t.render(fmt))
        print(f'wrote {len(tables) * len(args.formats)} files to '
              f'{args.out_dir}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
