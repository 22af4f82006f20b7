"""A study's tables in markdown, CSV and LaTeX: a row per loss, the mean ±
sample std over the seeds of its selected variant on the report split (the
variant in the row label, or by the number where columns differ in it)."""
import csv
import io
import math
import re
from typing import Dict, List, Optional, Sequence, Tuple

from .cells import Cell, run_name
from .collect import Results, format_duration
from .selection import Reported, mean_std, report_selected

# metric -> (column label, format, larger is better (bold) / not / None)
METRIC_FMT = {k: (label or k, '{:.2f}', True) for k, label in dict(
    mIoU='', aAcc='', mAcc='', mDice='', mIoU_head='head', mIoU_body='body',
    mIoU_tail='tail', mPrecision='', mRecall='', mIoU_img='image mIoU',
    mIoU_img_worst='worst-q% image mIoU', mIoU_img_cls='mIoU^C').items()}
METRIC_FMT.update({k: (k, '{:.4f}', False)
                   for k in ('DiceErr', 'ECE', 'SCE')})
# the bounds of the bootstrap intervals
METRIC_FMT.update({f'{k}_ci_{b}': (f'{label} CI {b}', '{:.2f}', None)
                   for k, label in (('mIoU', 'mIoU'), ('mIoU_tail', 'tail'))
                   for b in ('low', 'high')})
# head / body / tail by the other frequency (image or pixel counts)
METRIC_FMT.update({f'mIoU_{g}_{kind}freq': (f'{g} ({kind})', '{:.2f}', True)
                   for g in ('head', 'body', 'tail')
                   for kind in ('img', 'pix')})
# LongTailIoUMetric's optional keys: shown only where some record has them
OPTIONAL_METRICS = tuple(k for k in METRIC_FMT if k not in (
    'mIoU', 'aAcc', 'mAcc', 'mDice', 'mIoU_head', 'mIoU_body', 'mIoU_tail',
    'DiceErr'))
TABLES = ('table3', 'table4', 'table6', 'groups', 'selection', 'runs')

# converged: the last CONVERGED_LAST of at least CONVERGED_MIN_EVALS
# evaluations span at most CONVERGED_SPREAD points of selection mIoU
CONVERGED_LAST, CONVERGED_SPREAD, CONVERGED_MIN_EVALS = 3, 1.0, 6


def curve_spread(curve: Sequence[dict]) -> Optional[float]:
    """Max - min of a validation curve's last mIoU values (None: too few)."""
    values = [p['mIoU'] for p in curve if p.get('mIoU') is not None]
    if len(values) < CONVERGED_MIN_EVALS:
        return None
    return max(values[-CONVERGED_LAST:]) - min(values[-CONVERGED_LAST:])


def present_metrics(summaries) -> List[str]:
    """The optional metrics that at least one summary has a number for."""
    summaries = [s for s in summaries if s]
    return [k for k in OPTIONAL_METRICS
            if any(s.get(k) is not None for s in summaries)]


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


class Table:
    """Rows of (group, column) cells: a float, per-seed floats (mean ± std),
    text or None; ``fmt``: column -> (format, larger is better or None). Row
    ``notes`` follow the numbers; ``marks`` and a column's best are bold."""

    def __init__(self, name: str, title: str, row_label: str,
                 groups: List[Tuple[str, List[str]]],
                 col_labels: Dict[str, str],
                 fmt: Dict[str, Tuple[str, Optional[bool]]], left: int = 1):
        self.name, self.title, self.row_label = name, title, row_label
        self.groups, self.col_labels, self.fmt = groups, col_labels, fmt
        self.left, self.rows = left, []  # (label, values, notes, marks)
        self.keys = [(g, c) for g, cols in groups for c in cols]

    @classmethod
    def plain(cls, name: str, title: str, row_label: str,
              cols: List[str], larger: Optional[bool]) -> 'Table':
        return cls(name, title, row_label, [('', cols)], {c: c for c in cols},
                   {c: ('{:.2f}', larger) for c in cols})

    def add_row(self, label: str, values: dict, notes: Optional[dict] = None,
                marks=()) -> None:
        self.rows.append((label, values, notes or {}, set(marks)))

    def header(self) -> List[str]:
        return [self.row_label] + [
            f'{g} {self.col_labels[c]}'.strip() for g, c in self.keys]

    @staticmethod
    def _number(v) -> Optional[float]:
        if isinstance(v, (list, tuple)):
            v = mean_std(v)[0] if v else None
        return v if isinstance(v, float) and math.isfinite(v) else None

    def cell(self, values, key, notes) -> str:
        v = values.get(key)
        if isinstance(v, float):
            v = [v] if math.isfinite(v) else None
        if isinstance(v, (list, tuple)):
            v = fmt_mean_std(v, self.fmt[key[1]][0])
        text = '' if v is None else str(v)
        return f'{text} ({notes[key]})' if text and notes.get(key) else text

    def text_rows(self, bold, escape=str) -> List[List[str]]:
        best = {}
        for key in self.keys:
            larger = self.fmt[key[1]][1]
            vals = {self._number(v.get(key)) for _, v, _, _ in self.rows}
            vals.discard(None)
            if larger is not None and len(vals) > 1:
                best[key] = max(vals) if larger else min(vals)
        rows = []
        for label, values, notes, marks in self.rows:
            rows.append([escape(label)])
            for key in self.keys:
                text = escape(self.cell(values, key, notes))
                top = key in best and best[key] == self._number(
                    values.get(key))
                rows[-1].append(bold(text) if text and (
                    key in marks or top) else text)
        return rows

    def to_markdown(self, title: bool = True) -> str:
        return (f'**{self.title}**\n\n' if title else '') + md_table(
            self.header(), self.text_rows(lambda t: f'**{t}**'), self.left)

    def to_csv(self) -> str:
        buf = io.StringIO()
        csv.writer(buf, lineterminator='\n').writerows(
            [self.header()] + self.text_rows(str))
        return buf.getvalue()

    def to_latex(self) -> str:
        def esc(text: str) -> str:
            return re.sub(r'([&%$#_{}])', r'\\\1', text).replace(
                '±', r'$\pm$')

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

    def __init__(self, results: Results):
        self.results, self.study = results, results.study
        self.selections = results.selections()
        self.reported: Dict[Tuple, Reported] = report_selected(
            self.study, results.finished, self.selections)

    def rep(self, d: str, m: str, lo: str) -> Optional[Reported]:
        rep = self.reported.get((d, m, lo))
        return rep if rep and rep.runs else None

    def present(self, axis: int) -> List[str]:
        """The data sets (axis 0) or models (1) with a finished run."""
        seen = {c.group[axis] for c in self.results.finished}
        return [k for k in (self.study.datasets if axis == 0
                            else self.study.models) if k in seen]

    def reported_runs(self, d: str, m: str) -> list:
        return [r for rep in self.reported.values()
                if rep.group[:2] == (d, m) for r in rep.runs]

    def _loss_rows(self, table: Table, columns: Dict[tuple, Tuple[str, str]],
                   value_of) -> Table:
        """One row per loss; ``columns``: key -> (data set, model) whose
        reported setting gives ``value_of(reported, key)``."""
        for lo, loss in self.study.losses.items():
            reps = {k: self.rep(d, m, lo) for k, (d, m) in columns.items()}
            values = {k: value_of(r, k) if r else None
                      for k, r in reps.items()}
            notes = {k: loss.variant(r.variant).label
                     for k, r in reps.items() if r}
            rep = next((r for r in reps.values() if r), None)
            if len(set(notes.values())) > 1:  # say which setting where
                table.add_row(loss.title, values, notes)
            else:  # the reported setting, the only one, or the title
                table.add_row(rep.label if rep else loss.label(
                    loss.variants[0]) if len(loss.variants) == 1 else
                    loss.title, values)
        return table

    def summary(self, model: str, metrics: Sequence[str], name: str,
                title: str, datasets: Optional[Sequence[str]] = None
                ) -> Table:
        """Loss x (data set, metric or ``seeds``) of one model."""
        datasets = list(datasets or self.present(0))
        groups = [('' if len(datasets) == 1 else
                   self.study.datasets[d].title, list(metrics))
                  for d in datasets]
        fmt = dict(METRIC_FMT, seeds=('seeds', '', None))
        table = Table(name, title, 'Loss', groups,
                      {k: fmt[k][0] for k in metrics},
                      {k: fmt[k][1:] for k in metrics})
        columns = {(g, k): (d, model)
                   for (g, ks), d in zip(groups, datasets) for k in ks}
        return self._loss_rows(table, columns, lambda rep, key: (
            ', '.join(map(str, rep.seeds)) if key[1] == 'seeds'
            else rep.values(key[1])))

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
        keys = ['mIoU', 'aAcc', 'mDice', 'mIoU_head', 'mIoU_body',
                'mIoU_tail'] + present_metrics(
            r.report.summary for r in self.reported_runs(dataset, model))
        return self.summary(model, keys + ['seeds'],
                            f'metrics_{dataset}_{model}',
                            self.study.models[model].title, [dataset])

    def table4(self, dataset: str) -> Table:
        models = self.present(1) or list(self.study.models)
        cols = [self.study.models[m].title for m in models]
        table = Table.plain(f'table4_{dataset}', 'Table 4: loss x model, '
                            f'{self.study.datasets[dataset].title} (report '
                            'split, mIoU %)', 'Loss', cols, True)
        return self._loss_rows(table, {('', c): (dataset, m)
                                       for m, c in zip(models, cols)},
                               lambda rep, key: rep.values('mIoU'))

    def classes(self, dataset: str, model: str) -> Optional[List[str]]:
        return next((r.classes for r in self.reported_runs(dataset, model)
                     if r.classes), None)

    def table6(self, dataset: str, model: str,
               order: Optional[Sequence[int]] = None,
               names: Optional[Sequence[str]] = None) -> Optional[Table]:
        """Per-class IoU of the classes ``order`` labelled ``names``."""
        classes = self.classes(dataset, model)
        if classes is None:
            return None
        order = list(range(len(classes)) if order is None else order)
        names = list(names or [classes[i] for i in order])
        table = Table.plain(f'table6_{dataset}_{model}', 'Table 6: per-class '
                            f'IoU (%), {self.study.datasets[dataset].title}, '
                            f'{self.study.models[model].title} (report split)',
                            'Loss', names, True)
        index = dict(zip(names, order))

        def per_class(rep, key):
            i = index[key[1]]
            return [r.report.per_class_iou[i] for r in rep.runs
                    if r.classes == classes and r.report.per_class_iou
                    and r.report.per_class_iou[i] is not None] or None

        return self._loss_rows(
            table, {('', c): (dataset, model) for c in names}, per_class)

    def selection(self, dataset: str) -> Optional[Table]:
        """Each swept setting's selection score per model, the chosen bold."""
        study = self.study
        cols = {m: study.models[m].title for m in study.models}
        table = Table.plain(
            f'selection_{dataset}', f'Selection: mean {study.select_metric} '
            f'(%) on the selection split, {study.datasets[dataset].title}',
            'Setting', list(cols.values()), None)
        for lo, loss in study.losses.items():
            sels = {('', c): self.selections.get((dataset, m, lo))
                    for m, c in cols.items()}
            for v in loss.variants if len(loss.variants) > 1 else ():
                marks = [k for k, s in sels.items()
                         if s and s.variant == v.tag]
                scores = {k: s and s.scores[v.tag] for k, s in sels.items()}
                table.add_row(loss.label(v), scores, {
                    k: 'so far' for k in marks if not sels[k].complete}, marks)
        return table if table.rows else None

    def runs(self, planned: Sequence[Cell] = (),
             dataset: Optional[str] = None) -> Table:
        """Every run (of ``dataset``) and ``planned`` cell, by name."""
        study, finished = self.study, self.results.finished
        runs = {Cell.from_dict(r.cell): r for r in self.results.others}
        runs.update(finished)
        runs = {c: r for c, r in runs.items() if dataset in (None, c.dataset)}
        reported = ['mIoU', 'mIoU_tail'] + present_metrics(
            r.report.summary for r in runs.values() if r.report)
        cols = ['model', 'loss', 'seed', 'status', 'iters', 'wall',
                'train s/iter', f'last {CONVERGED_LAST}', 'converged',
                'selection mIoU'] + reported
        table = Table(
            'runs', 'All runs', 'Run', [('', cols)],
            {c: f'report {METRIC_FMT[c][0]}' if c in reported else c
             for c in cols},
            {c: (METRIC_FMT[c][1] if c in reported else '{:.2f}', None)
             for c in cols}, left=3)
        for c in dict.fromkeys(list(planned) + list(runs)):
            r, loss = runs.get(c), study.losses.get(c.loss)
            known = loss is not None and any(v.tag == c.variant
                                             for v in loss.variants)
            cells = [getattr(study.models.get(c.model), 'title', c.model),
                     loss.label(loss.variant(c.variant)) if known else
                     f'{c.loss}:{c.variant}', str(c.seed), 'not run yet']
            if r is not None:
                spread = curve_spread(r.curve or []) if c in finished else None
                converged = 'too few' if spread is None else (
                    'yes' if spread <= CONVERGED_SPREAD else 'no')
                rep = r.report.summary if r.report else {}
                cells[3:] = [
                    r.state, r.iters and str(r.iters),
                    format_duration(r.wall_s), r.train_s_per_iter, spread,
                    converged if c in finished else None,
                    r.selection.summary.get('mIoU') if r.selection else None
                ] + [rep.get(k) for k in reported]
            table.add_row(r.name if r else run_name(study, c) if known
                          else c.key, dict(zip(table.keys, cells)))
        table.rows.sort(key=lambda row: row[0])
        return table

    def build(self, which: Sequence[str] = TABLES) -> List[Table]:
        """The tables named in ``which``, in the order of TABLES."""
        ms = [(m, ) for m in self.present(1)]
        ds = [(d, ) for d in self.present(0)]
        args = dict(table3=ms, table4=ds, groups=ms, selection=ds, runs=[()],
                    table6=[d + m for d in ds for m in ms])
        tables = [getattr(self, name)(*a) for name in TABLES
                  if name in which for a in args[name]]
        return [t for t in tables if t is not None]
