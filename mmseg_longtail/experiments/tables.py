"""A study's tables from its results, in markdown, CSV and LaTeX; the
results page is built from the same tables.

Rows are losses in the spec's order; a number is the mean ± sample std over
the seeds of the loss's selected variant on the report split (blank where no
run has finished). The variant goes into the row label (``LDAM (s=5)``), or
next to the number where the selection differs between columns.

* ``table3`` (per model): loss x data set: mIoU, aAcc, Dice error;
* ``table4`` (per data set): loss x model: mIoU;
* ``table6`` (per data set and model): per-class IoU;
* ``groups`` (per model): loss x data set: head / body / tail mIoU;
* ``selection`` (per data set): every setting's selection-split mean, the
  chosen one in bold;
* ``runs``: one row per run, finished or not, with its convergence.
"""
import csv
import io
import math
import re
from typing import Dict, List, Optional, Sequence, Tuple

from .cells import Cell, run_name
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
    'mIoU_img_cls': ('mIoU^C', '{:.2f}', True),
}
# head / body / tail by the other frequency (image or pixel counts)
METRIC_FMT.update({f'mIoU_{g}_{kind}freq': (f'{g} ({kind})', '{:.2f}', True)
                   for g in ('head', 'body', 'tail') for kind in ('img',
                                                                  'pix')})
# shown only where some record has them
OPTIONAL_METRICS = ('mPrecision', 'mRecall', 'mIoU_img', 'mIoU_img_worst',
                    'mIoU_img_cls', 'ECE', 'SCE', 'mIoU_ci_low',
                    'mIoU_ci_high', 'mIoU_tail_ci_low', 'mIoU_tail_ci_high'
                    ) + tuple(k for k in METRIC_FMT if k.endswith('freq'))
PAGE_METRICS = ('mIoU', 'aAcc', 'mDice', 'mIoU_head', 'mIoU_body',
                'mIoU_tail')
TABLES = ('table3', 'table4', 'table6', 'groups', 'selection', 'runs')

# a run has converged when the selection mIoU of its last CONVERGED_LAST
# evaluations spans at most CONVERGED_SPREAD points (at least
# CONVERGED_MIN_EVALS evaluations, so that the last ones are late)
CONVERGED_LAST, CONVERGED_SPREAD, CONVERGED_MIN_EVALS = 3, 1.0, 6


def curve_spread(curve: Sequence[dict],
                 metric: str = 'mIoU') -> Optional[float]:
    """Max - min of ``metric`` over the last evaluations of a validation
    curve; None when the curve is too short to judge convergence."""
    values = [p[metric] for p in curve if p.get(metric) is not None]
    if len(values) < CONVERGED_MIN_EVALS:
        return None
    return max(values[-CONVERGED_LAST:]) - min(values[-CONVERGED_LAST:])


def converged_mark(spread: Optional[float]) -> str:
    if spread is None:
        return 'too few'
    return 'yes' if spread <= CONVERGED_SPREAD else 'no'


def present_metrics(summaries, keys: Sequence[str] = OPTIONAL_METRICS
                    ) -> List[str]:
    """The ``keys`` that at least one summary holds a number for."""
    summaries = [s for s in summaries if s]
    return [k for k in keys if any(s.get(k) is not None for s in summaries)]


def fmt_mean_std(values: Sequence[float], fmt: str = '{:.2f}') -> str:
    """``mean ± std`` (the mean alone for one value, '' for none)."""
    if not values:
        return ''
    mean, std = mean_std(values)
    return fmt.format(mean) + ('' if std is None else
                               f' ± {fmt.format(std)}')


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]],
             left: int = 1) -> str:
    """Markdown table; the first ``left`` columns left-aligned."""
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '---|' * left + '---:|' * (len(header) - left)]
    lines += ['| ' + ' | '.join(r) + ' |' for r in rows]
    return '\n'.join(lines) + '\n'


Key = Tuple[str, str]  # (column group, column)


class Table:
    """Rows x (group, column) cells: a float, a list of per-seed floats
    (shown as mean ± std, compared by the mean), text or None (blank).

    ``fmt`` maps a column to ``(format, larger_better)``: the best mean of a
    column with a direction is bold. A row's ``notes`` (key -> text) follow
    its numbers; its ``marks`` (keys) are bold as well.
    """

    def __init__(self, name: str, title: str, row_label: str,
                 groups: List[Tuple[str, List[str]]],
                 col_labels: Dict[str, str],
                 fmt: Dict[str, Tuple[str, Optional[bool]]], left: int = 1):
        self.name, self.title, self.row_label = name, title, row_label
        self.groups, self.col_labels, self.fmt = groups, col_labels, fmt
        self.left = left
        self.rows: List[Tuple[str, Dict, Dict, set]] = []

    def add_row(self, label: str, values: Dict[Key, object],
                notes: Optional[Dict[Key, str]] = None, marks=()) -> None:
        self.rows.append((label, values, notes or {}, set(marks)))

    @property
    def keys(self) -> List[Key]:
        return [(g, c) for g, cols in self.groups for c in cols]

    @staticmethod
    def _number(v) -> Optional[float]:
        if isinstance(v, (list, tuple)):
            v = mean_std(v)[0] if v else None
        return v if isinstance(v, float) and math.isfinite(v) else None

    def _best(self) -> Dict[Key, float]:
        best = {}
        for key in self.keys:
            larger = self.fmt[key[1]][1]
            vals = {self._number(v.get(key)) for _, v, _, _ in self.rows}
            vals.discard(None)
            if larger is not None and len(vals) > 1:
                best[key] = max(vals) if larger else min(vals)
        return best

    def cell(self, values, key, notes=None) -> str:
        v, fmt = values.get(key), self.fmt[key[1]][0]
        if isinstance(v, (list, tuple)):
            text = fmt_mean_std(v, fmt)
        elif isinstance(v, float):
            text = fmt.format(v) if math.isfinite(v) else ''
        else:
            text = '' if v is None else str(v)
        note = (notes or {}).get(key)
        return f'{text} ({note})' if note and text else text

    def header(self) -> List[str]:
        return [self.row_label] + [
            f'{g} {self.col_labels[c]}'.strip() for g, c in self.keys]

    def text_rows(self, bold, escape=str) -> List[List[str]]:
        best = self._best()
        rows = []
        for label, values, notes, marks in self.rows:
            cells = [escape(label)]
            for key in self.keys:
                text = escape(self.cell(values, key, notes))
                num = self._number(values.get(key))
                if text and (key in marks or (
                        num is not None and best.get(key) == num)):
                    text = bold(text)
                cells.append(text)
            rows.append(cells)
        return rows

    def to_markdown(self, title: bool = True) -> str:
        return (f'**{self.title}**\n\n' if title else '') + md_table(
            self.header(), self.text_rows(lambda t: f'**{t}**'), self.left)

    def to_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator='\n')
        writer.writerow(self.header())
        writer.writerows(self.text_rows(str))
        return buf.getvalue()

    def to_latex(self) -> str:

        def esc(text: str) -> str:
            return re.sub(r'([&%$#_{}])', r'\\\1',
                          str(text)).replace('±', r'$\pm$')

        lines = ['% ' + self.title, r'\begin{tabular}{l' + 'r' * len(
            self.keys) + '}', r'\toprule']
        if any(g for g, _ in self.groups):
            lines.append(' & '.join([''] + [
                rf'\multicolumn{{{len(cols)}}}{{c}}{{{esc(g)}}}'
                for g, cols in self.groups]) + r' \\')
        lines.append(' & '.join([esc(self.row_label)] + [
            esc(self.col_labels[c]) for _, c in self.keys]) + r' \\')
        lines.append(r'\midrule')
        lines += [' & '.join(c) + r' \\' for c in self.text_rows(
            lambda t: rf'\textbf{{{t}}}', esc)]
        return '\n'.join(lines + [r'\bottomrule', r'\end{tabular}']) + '\n'

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

    def rep(self, d: str, m: str, lo: str) -> Optional[Reported]:
        rep = self.reported.get((d, m, lo))
        return rep if rep and rep.runs else None

    def label(self, d: str, m: str, lo: str) -> str:
        """The loss's row label: its reported setting, its only one, or its
        title."""
        rep, loss = self.rep(d, m, lo), self.study.losses[lo]
        if rep:
            return rep.label
        return (loss.label(loss.variants[0]) if len(loss.variants) == 1
                else loss.title)

    def present(self, axis: int) -> List[str]:
        keys = list(self.study.datasets if axis == 0 else self.study.models)
        seen = {c.group[axis] for c in self.results.finished}
        return [k for k in keys if k in seen]

    def _loss_rows(self, table: Table, columns, value_of) -> None:
        """One row per loss; ``columns``: (column key, (d, m)) pairs;
        ``value_of(reported, key)`` the per-seed values of a column."""
        for lo, loss in self.study.losses.items():
            values, labels = {}, {}
            for key, (d, m) in columns:
                rep = self.rep(d, m, lo)
                values[key] = value_of(rep, key) if rep else None
                if rep:
                    labels[key] = loss.variant(rep.variant).label
            if len(set(labels.values())) > 1:
                # selections differ between columns: say which where
                table.add_row(loss.title, values,
                              {k: t for k, t in labels.items() if t})
            else:
                # no columns (nothing finished yet): the loss's own label
                d, m = next((g for k, g in columns if k in labels),
                            columns[0][1] if columns else (None, None))
                table.add_row(self.label(d, m, lo), values)

    @staticmethod
    def _fmt(keys: Sequence[str]):
        return ({k: METRIC_FMT[k][0] for k in keys},
                {k: METRIC_FMT[k][1:] for k in keys})

    def summary(self, model: str, metrics: Sequence[str], name: str,
                title: str, datasets: Optional[Sequence[str]] = None
                ) -> Table:
        """Loss x (data set, metric) of one model; a single data set's
        columns are not prefixed with its title."""
        datasets = list(datasets or self.present(0))
        groups = [('' if len(datasets) == 1 else
                   self.study.datasets[d].title, list(metrics))
                  for d in datasets]
        table = Table(name, title, 'Loss', groups, *self._fmt(metrics))
        cols = [((g, k), (d, model)) for (g, ks), d in zip(groups, datasets)
                for k in ks]
        self._loss_rows(table, cols, lambda rep, key: rep.values(key[1]))
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

    def metrics(self, dataset: str, model: str) -> Table:
        """Every summary metric the runs of one model have, and the seeds."""
        runs = [r for rep in self.reported.values()
                if rep.group[:2] == (dataset, model) for r in rep.runs]
        keys = list(PAGE_METRICS) + present_metrics(
            r.report.summary for r in runs)
        table = self.summary(model, keys, f'metrics_{dataset}_{model}',
                             self.study.models[model].title, [dataset])
        table.groups[0][1].append('seeds')
        table.col_labels['seeds'], table.fmt['seeds'] = 'seeds', ('', None)
        for (_, values, _, _), lo in zip(table.rows, self.study.losses):
            rep = self.rep(dataset, model, lo)
            values[('', 'seeds')] = ', '.join(map(str, rep.seeds)) \
                if rep else None
        return table

    def table4(self, dataset: str) -> Table:
        models = self.present(1) or list(self.study.models)
        cols = [self.study.models[m].title for m in models]
        table = Table(
            f'table4_{dataset}',
            f'Table 4: loss x model, {self.study.datasets[dataset].title} '
            '(report split, mIoU %)', 'Loss', [('', cols)],
            {c: c for c in cols}, {c: ('{:.2f}', True) for c in cols})
        self._loss_rows(table, [(('', c), (dataset, m))
                                for m, c in zip(models, cols)],
                        lambda rep, k: rep.values('mIoU'))
        return table

    def classes(self, dataset: str, model: str) -> Optional[List[str]]:
        return next((r.classes for rep in self.reported.values()
                     if rep.group[:2] == (dataset, model)
                     for r in rep.runs if r.classes), None)

    def table6(self, dataset: str, model: str,
               order: Optional[Sequence[int]] = None,
               names: Optional[Sequence[str]] = None) -> Optional[Table]:
        """Per-class IoU; ``order``: the class indices to show (default all)
        and ``names`` their column labels."""
        classes = self.classes(dataset, model)
        if classes is None:
            return None
        order = list(order if order is not None else range(len(classes)))
        names = list(names or [classes[i] for i in order])
        table = Table(
            f'table6_{dataset}_{model}',
            'Table 6: per-class IoU (%), '
            f'{self.study.datasets[dataset].title}, '
            f'{self.study.models[model].title} (report split)', 'Loss',
            [('', names)], {c: c for c in names},
            {c: ('{:.2f}', True) for c in names})
        index = dict(zip(names, order))

        def per_class(rep, key):
            i = index[key[1]]
            vals = [r.report.per_class_iou[i] for r in rep.runs
                    if r.classes == classes and r.report.per_class_iou
                    and r.report.per_class_iou[i] is not None]
            return vals or None

        self._loss_rows(table, [(('', c), (dataset, model)) for c in names],
                        per_class)
        return table

    def selection(self, dataset: str) -> Optional[Table]:
        """Each swept setting's mean selection metric over the sweep seeds
        per model; the chosen one bold (``so far`` while the sweep is
        unfinished)."""
        study = self.study
        models = list(study.models)
        cols = [study.models[m].title for m in models]
        table = Table(
            f'selection_{dataset}', f'Selection: mean {study.select_metric} '
            f'(%) on the selection split, {study.datasets[dataset].title}',
            'Setting', [('', cols)], {c: c for c in cols},
            {c: ('{:.2f}', None) for c in cols})
        for lo, loss in study.losses.items():
            if len(loss.variants) < 2:
                continue
            for v in loss.variants:
                values, notes, marks = {}, {}, []
                for m, c in zip(models, cols):
                    sel = self.selections.get((dataset, m, lo))
                    values[('', c)] = sel.scores.get(v.tag) if sel else None
                    if sel and sel.variant == v.tag:
                        marks.append(('', c))
                        if not sel.complete:
                            notes[('', c)] = 'so far'
                table.add_row(loss.label(v), values, notes, marks)
        return table if table.rows else None

    def runs(self, planned: Sequence[Cell] = (),
             dataset: Optional[str] = None) -> Table:
        """Every run (of ``dataset``), and the ``planned`` cells without one
        (``not run yet``), by name."""
        runs = {Cell.from_dict(r.cell): r for r in self.results.others}
        runs.update(self.results.finished)
        runs = {c: r for c, r in runs.items()
                if dataset is None or c.dataset == dataset}
        extra = present_metrics(r.report.summary for r in runs.values()
                                if r.report)
        cols = (['model', 'loss', 'seed', 'status', 'iters', 'wall',
                 'train s/iter', f'last {CONVERGED_LAST}', 'converged',
                 'selection mIoU', 'mIoU', 'mIoU_tail'] + extra)
        fmt = {c: ('{:.2f}', None) for c in cols}
        fmt.update({k: (METRIC_FMT[k][1], None) for k in extra})
        labels = {c: c for c in cols}
        labels.update({k: f'report {METRIC_FMT[k][0]}'
                       for k in ['mIoU', 'mIoU_tail'] + extra})
        table = Table('runs', 'All runs', 'Run', [('', cols)], labels, fmt,
                      left=3)
        study, rows = self.study, []
        for c in dict.fromkeys(list(planned) + list(runs)):
            r = runs.get(c)
            loss = study.losses.get(c.loss)
            known = loss is not None and any(v.tag == c.variant
                                             for v in loss.variants)
            values = {
                'model': getattr(study.models.get(c.model), 'title',
                                 c.model),
                'loss': loss.label(loss.variant(c.variant)) if known else
                f'{c.loss}:{c.variant}', 'seed': str(c.seed)}
            if r is None:
                values['status'] = 'not run yet'
            else:
                spread = (curve_spread(r.curve or [])
                          if c in self.results.finished else None)
                sel = r.selection.summary if r.selection else {}
                rep = r.report.summary if r.report else {}
                values.update({
                    'status': r.state, 'iters': r.iters and str(r.iters),
                    'wall': format_duration(r.wall_s),
                    'train s/iter': r.train_s_per_iter,
                    f'last {CONVERGED_LAST}': spread,
                    'converged': (converged_mark(spread)
                                  if c in self.results.finished else None),
                    'selection mIoU': sel.get('mIoU')})
                values.update({k: rep.get(k) for k in ['mIoU', 'mIoU_tail']
                               + extra})
            name = r.name if r else (run_name(study, c) if known else c.key)
            rows.append((name, {('', k): v for k, v in values.items()}))
        for name, values in sorted(rows, key=lambda x: x[0]):
            table.add_row(name, values)
        return table

    def build(self, which: Sequence[str] = TABLES) -> List[Table]:
        models, datasets = self.present(1), self.present(0)
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
        if 'selection' in which:
            tables += [t for d in datasets
                       if (t := self.selection(d)) is not None]
        if 'runs' in which:
            tables.append(self.runs())
        return tables
