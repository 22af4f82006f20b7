"""A study's results page (markdown with PNG plots), from its run records.

Everything on the page comes from the committed run records (plus work dirs
for runs still in progress), so the page regenerates on any machine:
``python tools/collect_results.py --study SPEC --page``.

The page holds tables and plots with short captions saying what their
columns are; it states no conclusions. Reading the numbers (which loss
beats CE beyond the seed noise, and why) is written by hand in the study's
documentation.
"""
import datetime
import math
import os
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from .cells import Cell, plan_cells, run_name
from .collect import Results, base_variant, format_duration
from .selection import Reported, mean_std
from .spec import Study, rel_path
from .tables import METRIC_FMT, OPTIONAL_METRICS, PaperTables, md_table

PAGE_METRICS = ('mIoU', 'aAcc', 'mDice', 'mIoU_head', 'mIoU_body',
                'mIoU_tail')


def fmt_mean_std(values: Sequence[float], fmt: str = '{:.2f}') -> str:
    if not values:
        return ''
    mean, std = mean_std(values)
    text = fmt.format(mean)
    return text if std is None else f'{text} ± {fmt.format(std)}'


def _best_mean(columns: Sequence[Sequence[float]],
               larger: Optional[bool] = True) -> Optional[float]:
    """The largest (``larger=False``: smallest) mean of a column, None when
    fewer than two distinct means exist (nothing to single out) or
    ``larger`` is None (no better direction)."""
    means = {mean_std(v)[0] for v in columns if v}
    if larger is None or len(means) < 2:
        return None
    return max(means) if larger else min(means)


def _loss_cfg(study: Study, loss: str, tag: str) -> dict:
    """The loss_decode a loss variant trains with (base + options)."""
    from mmengine.config import Config
    lo = study.losses[loss]
    cfg = Config.fromfile(lo.base).loss_decode.to_dict()
    cfg.update(lo.variant(tag).options_dict)
    return cfg


def weight_rows(study: Study, counts_by_kind: Dict[str, list],
                classes) -> List[List[str]]:
    """One row per class-balanced setting of the study: the beta it resolves
    to on the study's counts, which counts, the max/min ratio of its class
    weights and each class's weight (those columns only when ``classes``
    names every weight)."""
    import numpy as np

    from mmseg_longtail.models.losses.base import (effective_number_weights,
                                                   resolve_beta)
    rows = []
    for lo, loss in study.losses.items():
        for v in loss.variants:
            cfg = _loss_cfg(study, lo, v.tag)
            if cfg.get('type') != 'ClassBalancedLoss':
                continue
            kind = cfg.get('count_type', 'pixel')
            counts = counts_by_kind.get(kind)
            if not counts:
                continue
            beta = resolve_beta(cfg.get('beta', 0.9999), counts)
            w = effective_number_weights(np.asarray(counts, float), beta)
            ratio = float(w.max() / w.min())
            # near-uniform weights need the decimals to show how near
            row = [loss.label(v), f'{beta:.10g}', kind,
                   f'{ratio:.6f}' if ratio < 1.01 else f'{ratio:.3g}']
            if classes and len(classes) == len(w):
                row += [f'{x:.2f}' for x in w]
            rows.append(row)
    return rows


def identical_pairs(study: Study,
                    finished: Dict[Cell, object]) -> List[List[str]]:
    """Pairs of loss settings whose finished runs gave the same report
    numbers (same data set, model and seed; every summary metric):
    ``[setting, same as, number of paired runs]``."""
    items = [(lo, v.tag) for lo, loss in study.losses.items()
             for v in loss.variants]
    out = []
    for i, (la, ta) in enumerate(items):
        for lb, tb in items[i + 1:]:
            pairs = []
            for c, run in finished.items():
                if (c.loss, c.variant) != (la, ta):
                    continue
                twin = finished.get(Cell(c.dataset, c.model, lb, tb, c.seed))
                if twin is not None and run.report and twin.report:
                    pairs.append((run, twin))
            if pairs and all(x.report.summary == y.report.summary
                             for x, y in pairs):
                a = study.losses[la].label(study.losses[la].variant(ta))
                b = study.losses[lb].label(study.losses[lb].variant(tb))
                out.append([b, a, str(len(pairs))])
    return out


@dataclass
class SeedNoise:
    """The seed std of one metric, pooled over the settings that have
    several seeds (each assumed as seed-sensitive as the others)."""
    sigma: float
    dof: int  # each setting with n seeds adds n - 1
    stds: Dict[str, float]  # loss -> its own sample std

    def of_difference(self, n: int = 1) -> float:
        """Std of the difference of two means over ``n`` seeds each that
        differ only in the seeds: σ·√(2/n)."""
        return self.sigma * math.sqrt(2 / n)


def seed_noise(values: Dict[str, List[float]]) -> Optional[SeedNoise]:
    """Pooled seed std of ``values`` (loss -> one value per seed): the root
    mean square of the sample stds of the losses with two or more seeds;
    None when no loss has two."""
    stds = {lo: mean_std(v)[1] for lo, v in values.items() if len(v) > 1}
    if not stds:
        return None
    return SeedNoise(
        math.sqrt(sum(sd**2 for sd in stds.values()) / len(stds)),
        sum(len(values[lo]) - 1 for lo in stds), stds)


WITHIN_NOISE, BEYOND_NOISE = 'within noise', 'beyond noise'


def noise_mark(difference: float, noise: SeedNoise) -> str:
    """``beyond noise`` when |difference| exceeds √2σ, the spread of two
    runs that differ only in the seed; ``within noise`` otherwise (equality
    included: with zero noise an equal mean is no difference at all)."""
    return (BEYOND_NOISE if abs(difference) > noise.of_difference() else
            WITHIN_NOISE)


def compare_with_reference(values: Dict[str, List[float]], ref: str
                           ) -> Tuple[Optional[SeedNoise],
                                      Dict[str, Tuple[float, Optional[str]]]]:
    """The pooled seed noise of ``values`` (loss -> one value per seed) and,
    for every other loss with values, its mean minus ``ref``'s mean and
    its :func:`noise_mark` (None without a pooled std); no differences
    when ``ref`` has no values."""
    noise = seed_noise(values)
    base = values.get(ref)
    if not base:
        return noise, {}
    ref_mean = mean_std(base)[0]
    out = {}
    for lo, v in values.items():
        if lo == ref or not v:
            continue
        d = mean_std(v)[0] - ref_mean
        out[lo] = (d, noise_mark(d, noise) if noise else None)
    return noise, out


# a run has converged when the selection mIoU of its last CONVERGED_LAST
# evaluations spans at most CONVERGED_SPREAD points (at least
# CONVERGED_MIN_EVALS evaluations, so that the last ones are late)
CONVERGED_LAST, CONVERGED_SPREAD, CONVERGED_MIN_EVALS = 3, 1.0, 6


def converged_mark(spread: Optional[float]) -> str:
    """The run table's convergence column for a :func:`curve_spread`."""
    if spread is None:
        return 'too few'
    return 'yes' if spread <= CONVERGED_SPREAD else 'no'


def curve_spread(curve: Sequence[dict],
                 metric: str = 'mIoU') -> Optional[float]:
    """Max - min of ``metric`` over the last evaluations of a validation
    curve; None when the curve is too short to judge convergence."""
    values = [p[metric] for p in curve if p.get(metric) is not None]
    if len(values) < CONVERGED_MIN_EVALS:
        return None
    last = values[-CONVERGED_LAST:]
    return max(last) - min(last)


def _setup_rows(study: Study, d: str,
                num_images: Optional[int]) -> List[Tuple[str, str]]:
    """(row, text) pairs describing the study, read from its configs."""
    from mmengine.config import Config
    ds = study.datasets[d]
    data = Config.fromfile(ds.base)
    sched = Config.fromfile(study.schedule_base)
    batch, crop = int(data.train_dataloader.batch_size), tuple(data.crop_size)
    test_scale = next((t['scale'] for t in data.test_pipeline
                       if t.get('type') == 'Resize'), None)
    opt = sched.optim_wrapper.optimizer
    iters = study.schedule_iters or int(sched.train_cfg.max_iters)
    epochs = (f' (about {iters * batch / num_images:.1f} epochs of '
              f'{num_images} images)' if num_images else '')
    extra = ', '.join(
        study.losses[lo].title + ' ' + ', '.join(map(str, study.seeds_of(
            lo))) for lo in study.losses if study.final_seeds(lo))
    seeds = (f'{", ".join(map(str, study.seeds))} for every loss setting' +
             (f'; the selected setting also: {extra}' if extra else ''))
    models = '; '.join(f'{m.title}: `{rel_path(m.base)}`, {m.aux_label}'
                       for m in study.models.values())
    scale = (f'images resized to {test_scale[0]}x{test_scale[1]} (w x h); '
             if test_scale else '')
    root = f', data root `{rel_path(ds.data_root)}`' if ds.data_root else ''
    if ds.selection == 'carve':
        sel = (f'carved from `train`: whole groups (`{ds.carve.group}`), '
               f'{100 * ds.carve.fraction:.0f}% of the files (seed '
               f'{ds.carve.seed}; lists in '
               f'`{rel_path(osp.join(study.results_dir, "splits", d))}`), '
               'not trained on')
    else:
        sel = '`val`'
    report = f'`{ds.report}`'
    if ds.selection == 'val' and ds.report == 'val':
        report += (' (the same split as the selection: nothing is held out '
                   'from the choice of settings)')
    losses = []
    for lo in study.losses.values():
        text = f'{lo.title}: `{rel_path(lo.base)}`'
        if len(lo.variants) > 1:
            text += ' swept over ' + '; '.join(
                f'`{v.label}`' for v in lo.variants)
        elif lo.variants[0].options:
            text += ' with ' + ', '.join(f'`{k}={v!r}`'
                                         for k, v in lo.variants[0].options)
        losses.append(text)
    return [
        ('data', f'{ds.title}: train on `train`{root}'),
        ('selection split', f'{sel}; the variant of each loss with the best '
         f'mean {study.select_metric} there is reported'),
        ('report split', f'{report}: every number below unless marked'),
        ('input', f'{scale}training crops {crop[0]}x{crop[1]} (h x w), batch '
         f'{batch}; `{rel_path(ds.base)}`; predictions are scored at the '
         'labels\' own resolution'),
        ('models', models),
        ('schedule', f'{opt.type} lr {opt.lr}, momentum '
         f'{opt.get("momentum", "-")}, weight decay '
         f'{opt.get("weight_decay", "-")}, poly decay; {iters} iterations'
         f'{epochs}, from scratch; `{rel_path(study.schedule_base)}`; the '
         'same schedule for every loss'),
        ('seeds', seeds),
        ('losses', '; '.join(losses) + '. On the decode head (counted '
         'losses get the class statistics); the auxiliary head as under '
         'models'),
    ]


def _plot_curves(path: str, title: str,
                 series: List[Tuple[str, List[dict]]], metric: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, curve in series:
        pts = [(p['iter'], p[metric]) for p in curve if metric in p]
        if pts:
            ax.plot(*zip(*pts), marker='o', label=label)
    ax.set_xlabel('iteration')
    ax.set_ylabel(f'{metric} on the selection split (%)')
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def mean_interval(summaries: Sequence[dict], key: str
                  ) -> Optional[Tuple[float, float]]:
    """The mean over seeds of each seed's ``<key>_ci_low`` and
    ``<key>_ci_high`` (None unless every seed has both)."""
    bounds = [(s.get(f'{key}_ci_low'), s.get(f'{key}_ci_high'))
              for s in summaries]
    if not bounds or any(lo is None or hi is None for lo, hi in bounds):
        return None
    return (sum(lo for lo, _ in bounds) / len(bounds),
            sum(hi for _, hi in bounds) / len(bounds))


def overlaps(a: Tuple[float, float], b: Tuple[float, float]) -> bool:
    """Whether two closed intervals share a point."""
    return a[0] <= b[1] and b[0] <= a[1]


class StudyPage:
    """Writes one study's page; ``roots``: the work roots read besides the
    records (named in the regenerate command)."""

    def __init__(self, results: Results, page: str,
                 roots: Sequence[str] = ()):
        self.results, self.study = results, results.study
        self.page, self.roots = page, list(roots)
        self.tables = PaperTables(results)
        self.cells, self.pending = plan_cells(self.study, {
            g: s.variant for g, s in self.tables.selections.items()
            if s.complete})
        self.page_dir = osp.dirname(osp.abspath(page))
        self.stem = osp.splitext(osp.basename(page))[0]

    def _rep(self, d: str, m: str, lo: str) -> Optional[Reported]:
        rep = self.tables.reported.get((d, m, lo))
        return rep if rep and rep.runs else None

    def _values(self, d, m, lo, key, split='report') -> List[float]:
        rep = self._rep(d, m, lo)
        return rep.values(key, split) if rep else []

    def _label(self, d, m, lo) -> str:
        rep = self._rep(d, m, lo)
        loss = self.study.losses[lo]
        if rep:
            return loss.label(loss.variant(rep.variant))
        return loss.label(loss.variants[0]) if len(
            loss.variants) == 1 else loss.title

    def header(self) -> List[str]:
        study, done = self.study, self.results.finished
        planned = [c for c in self.cells if c in done]
        spec_cmd = study.command()
        cfg_opts = sorted({tuple(r.cfg_options or ())
                           for r in done.values()})
        run_cmd = spec_cmd
        if len(cfg_opts) == 1 and cfg_opts[0]:
            run_cmd += ' --cfg-options ' + ' '.join(cfg_opts[0])
        page_cmd = (study.command('tools/collect_results.py') + ''.join(
            f' {rel_path(r)}' for r in self.roots) +
            f' --page {rel_path(self.page)}')
        now = datetime.datetime.now().strftime('%Y-%m-%d %H:%M')
        md = [f'# {study.title}', '',
              '<!-- generated by tools/collect_results.py --page from the '
              'run records; edit the generator, not this file -->', '',
              f'{len(planned)} of {len(self.cells)} runs finished ({now}; '
              f'run records in `{rel_path(study.results_dir)}/runs`)' + (
                  f', {len(self.pending)} groups wait for their sweep '
                  'before their further seeds are planned' if self.pending
                  else '') + '. Regenerate the page from the records:', '',
              '```bash', page_cmd, '```', '',
              'Reproduce every run (resumable: runs with a record are '
              'skipped, interrupted ones resume from their last '
              'checkpoint):', '', '```bash', run_cmd, '```', '']
        if len(cfg_opts) > 1:
            md += ['Note: the runs used different `--cfg-options`: ' +
                   '; '.join(' '.join(o) or '(none)' for o in cfg_opts) +
                   '.', '']
        md += [f'- {n}' for n in study.notes] + ([''] if study.notes else [])
        return md

    def results_section(self, d: str, classes, counts) -> List[str]:
        study, models = self.study, list(self.study.models)
        losses = list(study.losses)
        md = ['## Results', '',
              'Report split, after the last iteration, mean over the '
              'finished seeds of each loss\'s selected setting (± sample '
              'std where more than one). mIoU, aAcc, mDice and the head / '
              'body / tail mIoU in %; the best mean of each column in '
              'bold.', '']
        header = ['Loss'] + [study.models[m].title for m in models]
        best = {m: _best_mean([self._values(d, m, lo, 'mIoU')
                               for lo in losses]) for m in models}
        rows = []
        for lo in losses:
            labels = {self._label(d, m, lo) for m in models}
            row = [labels.pop() if len(labels) == 1 else study.losses[
                lo].title]
            for m in models:
                v = self._values(d, m, lo, 'mIoU')
                text = fmt_mean_std(v)
                if v and mean_std(v)[0] == best[m]:
                    text = f'**{text}**'
                if text and row[0] == study.losses[lo].title and len(
                        study.losses[lo].variants) > 1:
                    text += f' ({self._label(d, m, lo)})'
                row.append(text)
            rows.append(row)
        md += ['**mIoU (%), loss x model**', '', md_table(header, rows)]
        shown_extra = set()
        for m in models:
            # the metric's optional keys, where some run of the model has them
            extra = [k for k in OPTIONAL_METRICS
                     if any(self._values(d, m, lo, k) for lo in losses)]
            shown_extra.update(extra)
            keys = list(PAGE_METRICS) + extra
            header = ['Loss'] + [METRIC_FMT[k][0] for k in keys] + [
                'seeds']
            col_best = {k: _best_mean([self._values(d, m, lo, k)
                                       for lo in losses], METRIC_FMT[k][2])
                        for k in keys}
            rows = []
            for lo in losses:
                row = [self._label(d, m, lo)]
                for k in keys:
                    v = self._values(d, m, lo, k)
                    text = fmt_mean_std(v, METRIC_FMT[k][1])
                    if v and mean_std(v)[0] == col_best[k]:
                        text = f'**{text}**'
                    row.append(text)
                rep = self._rep(d, m, lo)
                row.append(', '.join(map(str, rep.seeds)) if rep else '')
                rows.append(row)
            md += [f'**{study.models[m].title}**', '', md_table(header, rows)]
        if shown_extra:
            md += ['Further columns from LongTailIoUMetric\'s records where '
                   'the runs have them (docs/datasets.md): mean precision '
                   'and recall, per-image mIoU and the mean of the worst '
                   'q% images, ECE / SCE (%, lower is better), and the '
                   'bounds of the per-image bootstrap interval of mIoU and '
                   'tail mIoU (mean over seeds).', '']
        weights = weight_rows(study, counts, classes)
        if weights:
            width = max(len(r) for r in weights)
            md += ['**Class-balanced weights**', '',
                   'Each class-balanced setting on this study\'s counts, as '
                   'the loss code computes them: the resolved beta, the '
                   'counts weighed, max/min of the class weights and each '
                   'class\'s weight.', '',
                   md_table(['Setting', 'beta', 'counts', 'max/min'] +
                            list(classes or [])[:width - 4],
                            [r + [''] * (width - len(r)) for r in weights])]
        pairs = identical_pairs(study, {c: r for c, r in
                                        self.results.finished.items()
                                        if c.dataset == d})
        if pairs:
            md += ['**Identical settings**', '',
                   'Loss settings whose report metrics equal another\'s in '
                   'every run with the same model and seed.', '',
                   md_table(['Setting', 'same metrics as', 'paired runs'],
                            pairs, 2)]
        return md

    def _reference_loss(self) -> Optional[str]:
        """The loss the intervals are compared with: cross-entropy."""
        return next((k for k, lo in self.study.losses.items()
                     if k == 'ce' or lo.name == 'ce'), None)

    def intervals_section(self, d: str) -> List[str]:
        """Per model: each loss's mean and the mean of its seeds' bootstrap
        intervals over the report split's images, for mIoU and tail mIoU,
        and whether that interval overlaps CE's (— where a record has no
        interval)."""
        study, ce = self.study, self._reference_loss()
        levels = {r.report.bootstrap.get('level')
                  for r in self.results.finished.values()
                  if r.report and r.report.bootstrap}
        level = (f'{100 * levels.pop():g}% ' if len(levels) == 1 else '')
        md = ['## Intervals over images', '',
              f'Report split: mean over the seeds, and the mean of the '
              f'seeds\' {level}per-image bootstrap intervals (resampling '
              'the images); "vs CE": whether the interval overlaps CE\'s '
              '("overlaps") or not ("apart").', '']
        keys = (('mIoU', 'mIoU'), ('mIoU_tail', 'tail mIoU'))
        for m in study.models:
            header = ['Loss']
            for _, title in keys:
                header += [title, f'{title} interval', 'vs CE']
            ce_rep = self._rep(d, m, ce) if ce is not None else None
            ref = {k: mean_interval([r.report.summary for r in ce_rep.runs],
                                    k) for k, _ in keys} if ce_rep else {}
            rows = []
            for lo in study.losses:
                rep = self._rep(d, m, lo)
                if rep is None:
                    continue
                row = [self._label(d, m, lo)]
                for k, _ in keys:
                    ci = mean_interval([r.report.summary for r in rep.runs],
                                       k)
                    mark = '—'
                    if ci and ref.get(k) and lo != ce:
                        mark = 'overlaps' if overlaps(ci, ref[k]) else 'apart'
                    row += [fmt_mean_std(self._values(d, m, lo, k)) or '—',
                            f'[{ci[0]:.2f}, {ci[1]:.2f}]' if ci else '—',
                            mark]
                rows.append(row)
            md += [f'**{study.models[m].title}**', '', md_table(header, rows)]
        return md

    def selection_section(self, d: str) -> List[str]:
        study = self.study
        swept = [lo for lo, loss in study.losses.items()
                 if len(loss.variants) > 1]
        if not swept:
            return []
        md = ['## Selection', '',
              f'Mean {study.select_metric} (%) of each setting on the '
              'selection split over the sweep seeds '
              f'({", ".join(map(str, study.seeds))}); the chosen setting in '
              'bold, reported above. The report split is never read for '
              'the choice.', '']
        header = ['Loss', 'Setting'] + [study.models[m].title
                                        for m in study.models]
        rows = []
        for lo in swept:
            loss = study.losses[lo]
            for v in loss.variants:
                row = [loss.title, v.label or '-']
                for m in study.models:
                    sel = self.tables.selections.get((d, m, lo))
                    score = sel.scores.get(v.tag) if sel else None
                    text = '' if score is None else f'{score:.2f}'
                    if sel and text and sel.variant == v.tag:
                        text = f'**{text}**' + ('' if sel.complete else
                                                ' (so far)')
                    row.append(text)
                rows.append(row)
        return (md + [md_table(header, rows, 2)] +
                self.bases_table(d, swept))

    def bases_rows(self, d: str, swept: Sequence[str]) -> List[List[str]]:
        """Per swept loss: its base config, the swept setting the base is
        (— where none) and the setting chosen for each model (`so far`
        while the sweep is unfinished)."""
        rows = []
        for lo in swept:
            loss = self.study.losses[lo]
            tag = base_variant(self.study, lo)
            row = [loss.title, f'`{rel_path(loss.base)}`',
                   loss.variant(tag).label if tag is not None else '—']
            for m in self.study.models:
                sel = self.tables.selections.get((d, m, lo))
                row.append('' if not sel or not sel.variant else
                           loss.variant(sel.variant).label +
                           ('' if sel.complete else ' (so far)'))
            rows.append(row)
        return rows

    def bases_table(self, d: str, swept: Sequence[str]) -> List[str]:
        return ['**Loss bases**', '',
                'Each loss base (the setting the grid\'s leaf configs train '
                'with) as a swept setting (—: none of them), and the setting '
                'chosen per model.', '',
                md_table(['Loss', 'Base', 'Base setting'] +
                         [self.study.models[m].title
                          for m in self.study.models],
                         self.bases_rows(d, swept), 3)]

    def noise_section(self, d: str) -> List[str]:
        study, done = self.study, self.results.finished
        md = ['## Seed spread', '']
        rows = []
        for m in study.models:
            for lo in study.losses:
                cells = [c for c in self.cells if c.group == (d, m, lo)
                         and c.seed in study.seeds_of(lo)]
                rep = self._rep(d, m, lo)
                tag = rep.variant if rep else None
                cells = [c for c in cells if c.variant == tag] if tag \
                    is not None else []
                if len(cells) < 2:
                    continue
                per = [f'{c.seed}: {done[c].report.summary["mIoU"]:.2f}'
                       if c in done and done[c].report else
                       f'{c.seed}: not run yet' for c in cells]
                rows.append([study.models[m].title, self._label(d, m, lo),
                             ', '.join(per),
                             fmt_mean_std(self._values(d, m, lo, 'mIoU')),
                             fmt_mean_std(self._values(d, m, lo,
                                                       'mIoU_tail'))])
        if not rows:
            return md + ['No selected setting has two planned seeds yet.',
                         '']
        return md + ['Report split, the selected setting of each loss with '
                     'two or more planned seeds.', '',
                     md_table(['Model', 'Loss', 'mIoU per seed',
                               'mIoU mean ± std', 'tail mIoU mean ± std'],
                              rows, 3)]

    COMPARED = (('mIoU', 'mIoU'), ('mIoU_tail', 'tail mIoU'))

    def comparison_section(self, d: str) -> List[str]:
        """Per model: the pooled seed std of mIoU and tail mIoU, and each
        loss's difference from CE's mean with its noise mark."""
        study, ce = self.study, self._reference_loss()
        if ce is None:
            return []
        md = ['## Comparison with CE', '',
              'Report split, means over the seeds of each loss\'s selected '
              'setting. Pooled σ: the root mean square of the sample stds of '
              'the settings with two or more seeds (each adds seeds - 1 '
              'degrees of freedom). Difference: the loss\'s mean minus '
              f'CE\'s (points). vs noise: `{BEYOND_NOISE}` where '
              '|difference| > √2σ (the spread of two runs that differ only '
              f'in the seed), else `{WITHIN_NOISE}`; — without a pooled σ.',
              '']
        pooled, tables = [], []
        for m in study.models:
            header, columns = ['Loss'], {}
            for key, title in self.COMPARED:
                values = {lo: self._values(d, m, lo, key)
                          for lo in study.losses}
                noise, diffs = compare_with_reference(values, ce)
                if noise:
                    pooled.append([study.models[m].title, title,
                                   f'{noise.sigma:.2f}', str(noise.dof),
                                   f'{noise.of_difference():.2f}',
                                   str(len(noise.stds))])
                columns[key] = (noise, diffs)
                header += [f'{title} − CE', f'{title} pooled σ',
                           f'{title} vs noise']
            rows = []
            for lo in study.losses:
                if lo == ce or not any(lo in columns[k][1]
                                       for k, _ in self.COMPARED):
                    continue
                row = [self._label(d, m, lo)]
                for key, _ in self.COMPARED:
                    noise, diffs = columns[key]
                    diff, mark = diffs.get(lo, (None, None))
                    row += ['—' if diff is None else f'{diff:+.2f}',
                            f'{noise.sigma:.2f}' if noise else '—',
                            mark or '—']
                rows.append(row)
            if rows:
                tables += [f'**{study.models[m].title}**', '',
                           md_table(header, rows)]
        if not tables:
            return []
        if pooled:
            md += ['**Pooled seed std**', '',
                   md_table(['Model', 'Metric', 'pooled σ',
                             'degrees of freedom', '√2σ', 'settings pooled'],
                            pooled, 2)]
        return md + tables

    def per_class_section(self, d: str, classes, counts, groups) -> List[str]:
        from mmseg_longtail.analysis.plot_class_iou import plot
        import numpy as np
        study = self.study
        pixels = counts.get('pixel')
        group_of = {i: g for g, ids in (groups or {}).items() for i in ids}
        order = (sorted(range(len(classes)), key=lambda i: -pixels[i])
                 if pixels else list(range(len(classes))))
        total = float(sum(pixels)) if pixels else None
        md = ['## Per-class IoU', '',
              'IoU (%) per class on the report split, mean over the '
              'finished seeds; classes from the most to the least frequent '
              'in the training pixels (share and group H / B / T in the '
              'header).', '']
        head = ['Loss'] + [
            f'{classes[i]} ({group_of.get(i, "-")[:1].upper()}' +
            (f', {100 * pixels[i] / total:.1f}%' if total else '') + ')'
            for i in order]
        for m in study.models:
            rows, records, names = [], [], []
            for lo in study.losses:
                rep = self._rep(d, m, lo)
                per = rep.per_class(classes) if rep else [None] * len(
                    classes)
                rows.append([self._label(d, m, lo)] + [
                    '' if per[i] is None else f'{per[i]:.2f}' for i in order])
                if rep and any(p is not None for p in per):
                    records.append(dict(
                        classes=list(classes), per_class=dict(IoU=per),
                        summary=dict(mIoU=mean_std(rep.values('mIoU'))[0])))
                    names.append(self._label(d, m, lo))
            md += [f'**{study.models[m].title}**', '', md_table(head, rows)]
            if records and pixels:
                png = f'{self.stem}_class_iou_{m}.png'
                plot(records, names, np.asarray(pixels, float), 'IoU',
                     osp.join(self.page_dir, png),
                     f'{study.datasets[d].title}, {study.models[m].title}: '
                     'IoU vs training share (mean over seeds)')
                md += [f'![{study.models[m].title}: per-class IoU against '
                       f'training frequency]({png})', '']
        return md

    def curves_section(self, d: str) -> List[str]:
        """Selection-split mIoU against iteration for CE and the best loss
        of each model (first seed of the selected settings)."""
        study, md = self.study, []
        for m in study.models:
            means = {lo: mean_std(v)[0] for lo in study.losses
                     if (v := self._values(d, m, lo, 'mIoU'))}
            if not means:
                continue
            best = max(means, key=means.get)
            series = []
            for lo in dict.fromkeys(['ce', best]):
                rep = self._rep(d, m, lo)
                if rep and rep.runs[0].curve:
                    series.append((f'{self._label(d, m, lo)} (seed '
                                   f'{rep.runs[0].cell["seed"]})',
                                   rep.runs[0].curve))
            if not series:
                continue
            png = f'{self.stem}_curves_{m}.png'
            _plot_curves(osp.join(self.page_dir, png),
                         f'{study.datasets[d].title}, '
                         f'{study.models[m].title}', series, 'mIoU')
            md.append(f'![{study.models[m].title}: validation curves]({png})')
        if md:
            md = ['## Training curves', '',
                  'mIoU on the selection split at each validation, for CE '
                  'and the best loss of each model.', ''] + md + ['']
        return md

    def runs_section(self, d: str) -> List[str]:
        study, done = self.study, self.results.finished
        others = {Cell.from_dict(r.cell): r for r in self.results.others
                  if r.cell}
        md = ['## Runs', '',
              'Wall time: the launcher\'s record (start-up, training, '
              'evaluation; summed over resumed attempts). Train s/iter: mean '
              'of mmengine\'s per-iteration `time` (data loading included). '
              f'Last {CONVERGED_LAST}: the spread (max - min) of the '
              f'selection mIoU over the last {CONVERGED_LAST} evaluations. '
              f'Converged: `yes` when that spread is at most '
              f'{CONVERGED_SPREAD:.1f} point, `no` above it, `too few` with '
              f'fewer than {CONVERGED_MIN_EVALS} evaluations.', '']
        rows, walls, spreads = [], [], []
        cells = [c for c in self.cells if c.dataset == d]
        for c in cells:
            r = done.get(c) or others.get(c)
            loss = study.losses[c.loss]
            label = loss.label(loss.variant(c.variant))
            name = run_name(study, c)
            if r is None:
                rows.append([name, study.models[c.model].title, label,
                             str(c.seed), 'not run yet'] + [''] * 8)
                continue
            if c in done and r.wall_s:
                walls.append(r.wall_s)
            state = r.state if r.state not in ('running', 'testing') else \
                'running or interrupted'
            sel = r.selection.summary.get('mIoU') if r.selection else None
            rep = r.report.summary if r.report else {}
            spread = curve_spread(r.curve or []) if c in done else None
            converged = ''
            if c in done:
                converged = converged_mark(spread)
                spreads.append(converged)
            rows.append([name, study.models[c.model].title, label,
                         str(c.seed), state, str(r.iters or ''),
                         format_duration(r.wall_s) or '',
                         f'{r.train_s_per_iter:.2f}'
                         if r.train_s_per_iter else '',
                         '' if spread is None else f'{spread:.2f}',
                         converged,
                         '' if sel is None else f'{sel:.2f}'] + [
                             '' if rep.get(k) is None else f'{rep[k]:.2f}'
                             for k in ('mIoU', 'mIoU_tail')])
        md += [md_table(['Run', 'Model', 'Loss', 'Seed', 'Status', 'Iters',
                         'Wall', 'Train s/iter', f'Last {CONVERGED_LAST}',
                         'Converged', 'Selection mIoU', 'Report mIoU',
                         'Report tail mIoU'], rows, 5)]
        if spreads:
            md += ['**Finished runs**', '',
                   md_table(['Finished', 'Converged', 'Wall in all',
                             'Wall mean', 'Wall min', 'Wall max'], [[
                                 str(len(spreads)),
                                 str(spreads.count('yes'))] + (
                                     [format_duration(x) for x in (
                                         sum(walls), sum(walls) / len(walls),
                                         min(walls), max(walls))]
                                     if walls else [''] * 4)], 0)]
        if self.results.problems:
            md += ['Work dirs that could not be read:', ''] + [
                f'- {p}' for p in self.results.problems] + ['']
        return md

    def write(self) -> str:
        from mmseg_longtail.utils import frequency_groups
        # the plots are written next to the page as the sections are built
        os.makedirs(self.page_dir, exist_ok=True)
        md = self.header()
        for d, ds in self.study.datasets.items():
            if len(self.study.datasets) > 1:
                md += [f'# {ds.title}', '']
            runs = [r for c, r in self.results.finished.items()
                    if c.dataset == d]
            ref = next((r for r in runs if r.classes), None)
            stats = {}
            if osp.isfile(ds.class_stats_file):
                from .records import read_json
                stats = read_json(ds.class_stats_file, 'class statistics')
            classes = (ref.classes if ref else None) or stats.get('classes')
            counts = dict(pixel=(ref.train_counts if ref else None)
                          or stats.get('pixel_counts'),
                          image=stats.get('image_counts'))
            groups = (ref.groups if ref else None) or (
                frequency_groups(counts['pixel']) if counts['pixel'] else
                None)
            md += ['## Setup', '', md_table(['', ''], [
                [k, v] for k, v in _setup_rows(self.study, d,
                                               stats.get('num_images'))], 2)]
            if groups and classes:
                md += ['Frequency groups (terciles of training pixels): ' +
                       '; '.join(f'{g} = ' + ', '.join(
                           classes[i] for i in groups[g])
                           for g in ('head', 'body', 'tail')) + '.', '']
            md += self.results_section(d, classes, counts)
            md += self.intervals_section(d)
            md += self.selection_section(d)
            md += self.noise_section(d)
            md += self.comparison_section(d)
            if classes:
                md += self.per_class_section(d, classes, counts, groups)
            md += self.curves_section(d)
            md += self.runs_section(d)
        text = '\n'.join(md)
        with open(self.page, 'w') as f:
            f.write(text)
        return text
