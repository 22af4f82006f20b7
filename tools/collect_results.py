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
                if re.search(rf'_{re.escape(ds.name)}-\d+x\d+$', name):
                    return dk, mk, lk
    return None


def _scalars_metrics(run_dir: str) -> Optional[dict]:
    """Last validation record of mmengine's scalars.json files."""
    best, best_key = None, None
    for path in glob.glob(osp.join(run_dir, '*', 'vis_data', 'scalars.json')):
        with open(path) as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
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
        classes=None, metrics_source=None)
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
        head = self.flat_header()
        lines = [f'**{self.title}**', '', '| ' + ' | '.join(head) + ' |',
                 '|' + '---|' + '---:|' * (len(head) - 1)]
        for cells in self.formatted_rows(lambda t: f'**{t}**'):
            lines.append('| ' + ' | '.join(cells) + ' |')
        return '\n'.join(lines) + '\n'

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


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description='Collect grid results into the PAT paper\'s tables',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__)
    parser.add_argument('roots', nargs='*', default=['work_dirs/grid'],
                        help='work roots to search (default: work_dirs/grid)')
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
    args = parser.parse_args(argv)

    runs = collect(args.roots)
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
