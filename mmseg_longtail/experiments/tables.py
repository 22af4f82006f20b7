"""The paper's tables from a study's results, in markdown, CSV and LaTeX.

Rows are losses in the spec's order; each number is the mean over seeds of
the loss's selected variant on the report split (blank where no run has
finished). The variant's settings go into the row label (``LDAM (s=5)``),
or next to the number where the selection differs between columns.

* ``table3`` (per model): loss x data set: mIoU, aAcc, Dice error;
* ``table4`` (per data set): loss x model: mIoU;
* ``table6`` (per data set and model): per-class IoU;
* ``groups`` (per model): loss x data set: head / body / tail mIoU;
* ``selection``: every variant's selection score, the chosen one in bold;
* ``runs``: one row per run, finished or not.
"""
import csv
import io
import math
import re
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from .cells import Cell
from .collect import Results, format_duration
from .selection import Reported, mean_std, report_selected

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
    # LongTailIoUMetric's optional keys (see OPTIONAL_METRICS)
    'mPrecision': ('mPrecision', '{:.2f}', True),
    'mRecall': ('mRecall', '{:.2f}', True),
    'mIoU_img': ('image mIoU', '{:.2f}', True),
    'mIoU_img_worst': ('worst-q% image mIoU', '{:.2f}', True),
    'ECE': ('ECE', '{:.4f}', False),
    'SCE': ('SCE', '{:.4f}', False),
    'mIoU_ci_low': ('mIoU CI low', '{:.2f}', None),
    'mIoU_ci_high': ('mIoU CI high', '{:.2f}', None),
    'mIoU_tail_ci_low': ('tail CI low', '{:.2f}', None),
    'mIoU_tail_ci_high': ('tail CI high', '{:.2f}', None),
}
# shown only where some record has them (older records have none)
OPTIONAL_METRICS = ('mPrecision', 'mRecall', 'mIoU_img', 'mIoU_img_worst',
                    'ECE', 'SCE', 'mIoU_ci_low', 'mIoU_ci_high',
                    'mIoU_tail_ci_low', 'mIoU_tail_ci_high')
TABLES = ('table3', 'table4', 'table6', 'groups', 'selection', 'runs')


def present_metrics(summaries: Iterable[Optional[dict]],
                    keys: Sequence[str] = OPTIONAL_METRICS) -> List[str]:
    """The ``keys`` that at least one summary holds a number for, in the
    order of ``keys``."""
    summaries = [s for s in summaries if s]
    return [k for k in keys
            if any(s.get(k) is not None for s in summaries)]


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]],
             left: int = 1) -> str:
    """Markdown table; the first ``left`` columns left-aligned."""
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '---|' * left + '---:|' * (len(header) - left)]
    lines += ['| ' + ' | '.join(r) + ' |' for r in rows]
    return '\n'.join(lines) + '\n'


class Table:
    """Rows x (group, column) cells of floats (None: blank) or text.

    ``groups`` is a list of ``(group label, [column keys])``; ``col_labels``
    maps a column key to its label; ``fmt`` to ``(format, larger_better)``.
    A row's ``notes`` (key -> text) are appended to its numbers.
    """

    def __init__(self, name: str, title: str, row_label: str,
                 groups: List[Tuple[str, List[str]]],
                 col_labels: Dict[str, str],
                 fmt: Dict[str, Tuple[str, Optional[bool]]]):
        self.name, self.title, self.row_label = name, title, row_label
        self.groups, self.col_labels, self.fmt = groups, col_labels, fmt
        self.rows: List[Tuple[str, Dict, Dict]] = []

    def add_row(self, label: str, values: Dict[Tuple[str, str], object],
                notes: Optional[Dict[Tuple[str, str], str]] = None):
        self.rows.append((label, values, notes or {}))

    @property
    def keys(self) -> List[Tuple[str, str]]:
        return [(g, c) for g, cols in self.groups for c in cols]

    def _best(self) -> Dict[Tuple[str, str], float]:
        best = {}
        for key in self.keys:
            larger = self.fmt[key[1]][1]
            vals = [v[key] for _, v, _ in self.rows
                    if isinstance(v.get(key), float) and math.isfinite(v[key])]
            if larger is not None and len(vals) > 1:
                best[key] = max(vals) if larger else min(vals)
        return best

    def cell(self, values, key, notes=None) -> str:
        v = values.get(key)
        if v is None:
            return ''
        if isinstance(v, float):
            text = self.fmt[key[1]][0].format(v) if math.isfinite(v) else ''
        else:
            text = str(v)
        note = (notes or {}).get(key)
        return f'{text} ({note})' if note and text else text

    def flat_header(self) -> List[str]:
        return [self.row_label] + [
            f'{g} {self.col_labels[c]}'.strip() for g, c in self.keys]

    def formatted_rows(self, bold, escape=str) -> List[List[str]]:
        """Rows of text cells; the best value of a column through ``bold``."""
        best = self._best()
        rows = []
        for label, values, notes in self.rows:
            cells = [escape(label)]
            for key in self.keys:
                text = escape(self.cell(values, key, notes))
                if text and best.get(key) == values.get(key):
                    text = bold(text)
                cells.append(text)
            rows.append(cells)
        return rows

    def to_markdown(self) -> str:
        return f'**{self.title}**\n\n' + md_table(
            self.flat_header(), self.formatted_rows(lambda t: f'**{t}**'))

    def to_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator='\n')
        writer.writerow(self.flat_header())
        for label, values, notes in self.rows:
            writer.writerow([label] + [self.cell(values, k, notes)
                                       for k in self.keys])
        return buf.getvalue()

    def to_latex(self) -> str:

        def esc(text: str) -> str:
            return re.sub(r'([&%$#_{}])', r'\\\1', str(text))

        n = len(self.keys)
        lines = ['% ' + self.title, r'\begin{tabular}{l' + 'r' * n + '}',
                 r'\toprule']
        if any(g for g, _ in self.groups):
            top = [''] + [rf'\multicolumn{{{len(cols)}}}{{c}}{{{esc(g)}}}'
                          for g, cols in self.groups]
            lines.append(' & '.join(top) + r' \\')
            col, rules = 2, []
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


class PaperTables:
    """Builds the tables of one study's results."""

    def __init__(self, results: Results, metric: Optional[str] = None):
        self.results, self.study = results, results.study
        self.selections = results.selections(metric)
        self.reported: Dict[Tuple, Reported] = report_selected(
            self.study, results.finished, self.selections)

    def _present(self, axis: int) -> List[str]:
        keys = list(self.study.datasets if axis == 0 else self.study.models)
        seen = {c.group[axis] for c in self.results.finished}
        return [k for k in keys if k in seen]

    def _loss_rows(self, table: Table, columns, metric_of) -> None:
        """One row per loss; ``columns``: (column key, group) pairs;
        ``metric_of(reported, key)`` the number of a column."""
        for lo, loss in self.study.losses.items():
            values, labels = {}, {}
            for key, group in columns:
                rep = self.reported.get(group + (lo, ))
                if rep is None or not rep.runs:
                    values[key] = None
                    continue
                values[key] = metric_of(rep, key)
                labels[key] = loss.variant(rep.variant).label
            if len(set(labels.values())) > 1:
                # selections differ between columns: say which where
                table.add_row(loss.title, values,
                              {k: t for k, t in labels.items() if t})
                continue
            first = next((g for k, g in columns if k in labels), None)
            tag = (self.reported[first + (lo, )].variant if first else
                   loss.variants[0].tag if len(loss.variants) == 1 else None)
            table.add_row(loss.title if tag is None else
                          loss.label(loss.variant(tag)), values)

    def _mean(self, rep: Reported, metric: str) -> Optional[float]:
        vals = rep.values(metric)
        return mean_std(vals)[0] if vals else None

    def summary(self, model: str, metrics: Sequence[str], name: str,
                title: str) -> Table:
        datasets = self._present(0)
        groups = [(self.study.datasets[d].title, list(metrics))
                  for d in datasets]
        table = Table(name, title, 'Loss', groups,
                      {m: METRIC_FMT[m][0] for m in metrics},
                      {m: (METRIC_FMT[m][1], METRIC_FMT[m][2])
                       for m in metrics})
        cols = [((self.study.datasets[d].title, m), (d, model))
                for d in datasets for m in metrics]
        self._loss_rows(table, cols, lambda rep, k: self._mean(rep, k[1]))
        return table

    def table3(self, model: str) -> Table:
        return self.summary(
            model, ('mIoU', 'aAcc', 'DiceErr'), f'table3_{model}',
            f'Table 3: loss x data set, {self.study.models[model].title} '
            '(report split; mIoU, aAcc in %; Dice error = 1 - mDice)')

    def groups(self, model: str) -> Table:
        return self.summary(
            model, ('mIoU_head', 'mIoU_body', 'mIoU_tail'),
            f'groups_{model}', 'Head / body / tail mIoU (%), '
            f'{self.study.models[model].title} (report split)')

    def table4(self, dataset: str) -> Table:
        models = self._present(1)
        cols = [self.study.models[m].title for m in models]
        table = Table(
            f'table4_{dataset}',
            f'Table 4: loss x model, {self.study.datasets[dataset].title} '
            '(report split, mIoU %)', 'Loss', [('', cols)],
            {c: c for c in cols}, {c: ('{:.2f}', True) for c in cols})
        self._loss_rows(table, [(('', c), (dataset, m))
                                for m, c in zip(models, cols)],
                        lambda rep, k: self._mean(rep, 'mIoU'))
        return table

    def table6(self, dataset: str, model: str) -> Optional[Table]:
        classes = next((r.classes for rep in self.reported.values()
                        if rep.group[:2] == (dataset, model)
                        for r in rep.runs if r.classes), None)
        if classes is None:
            return None
        table = Table(
            f'table6_{dataset}_{model}',
            'Table 6: per-class IoU (%), '
            f'{self.study.datasets[dataset].title}, '
            f'{self.study.models[model].title} (report split)', 'Loss',
            [('', list(classes))], {c: c for c in classes},
            {c: ('{:.2f}', True) for c in classes})
        index = {c: i for i, c in enumerate(classes)}
        self._loss_rows(table, [(('', c), (dataset, model)) for c in classes],
                        lambda rep, k: rep.per_class(classes)[index[k[1]]])
        return table

    def selection(self) -> Table:
        cols = ['data set', 'model', 'loss', 'variant', 'score', 'chosen']
        table = Table('selection', 'Selection: mean '
                      f'{self.study.select_metric} on the selection split '
                      'per variant (sweep seeds)', 'Variant', [('', cols)],
                      {c: c for c in cols},
                      {c: ('{:.2f}', None) for c in cols})
        for group, sel in self.selections.items():
            d, m, lo = group
            loss = self.study.losses[lo]
            for tag, score in sel.scores.items():
                chosen = 'yes' if tag == sel.variant else ''
                if chosen and not sel.complete:
                    chosen = 'so far (sweep unfinished)'
                table.add_row(loss.label(loss.variant(tag)), {
                    ('', 'data set'): self.study.datasets[d].title,
                    ('', 'model'): self.study.models[m].title,
                    ('', 'loss'): lo, ('', 'variant'): tag or '-',
                    ('', 'score'): score, ('', 'chosen'): chosen})
        return table

    def runs(self) -> Table:
        runs = sorted(self.results.all_runs, key=lambda r: r.name)
        extra = present_metrics(r.report.summary for r in runs if r.report)
        metric_cols = ['sel_mIoU', 'mIoU', 'aAcc', 'mDice', 'mIoU_tail'
                       ] + extra
        cols = ['cell', 'status', 'iters'] + metric_cols + ['wall']
        labels = {c: c for c in cols}
        labels.update({'sel_mIoU': 'selection mIoU', 'mIoU': 'report mIoU',
                       'mIoU_tail': 'report tail', 'aAcc': 'report aAcc',
                       'mDice': 'report mDice'})
        labels.update({k: f'report {METRIC_FMT[k][0]}' for k in extra})
        fmt = {c: ('{:.2f}', None) for c in cols}
        fmt.update({k: (METRIC_FMT[k][1], None) for k in extra})
        table = Table('runs', 'All runs', 'run', [('', cols)], labels, fmt)
        for r in runs:
            key = Cell.from_dict(r.cell).key if r.cell else '?'
            sel = r.selection.summary if r.selection else {}
            rep = r.report.summary if r.report else {}
            values = {('', 'cell'): key, ('', 'status'): r.state,
                      ('', 'iters'): r.iters,
                      ('', 'wall'): format_duration(r.wall_s),
                      ('', 'sel_mIoU'): sel.get('mIoU')}
            for k in metric_cols[1:]:
                values[('', k)] = rep.get(k)
            table.add_row(r.name, values)
        return table

    def build(self, which: Sequence[str] = TABLES) -> List[Table]:
        models, datasets = self._present(1), self._present(0)
        tables: List[Table] = []
        if 'table3' in which:
            tables += [self.table3(m) for m in models]
        if 'table4' in which:
            tables += [self.table4(d) for d in datasets]
        if 'table6' in which:
            tables += [t for d in datasets for m in models
                       if (t := self.table6(d, m)) is not None]
        if 'groups' in which:
            tables += [self.groups(m) for m in models]
        if 'selection' in which and any(
                len(lo.variants) > 1 for lo in self.study.losses.values()):
            tables.append(self.selection())
        if 'runs' in which:
            tables.append(self.runs())
        return tables
