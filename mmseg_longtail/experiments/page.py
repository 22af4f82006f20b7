"""A study's results page (markdown with PNG plots), from its run records.

Everything on the page comes from the committed run records (plus work dirs
for runs still in progress), so the page regenerates on any machine:
``python tools/collect_results.py --study SPEC --page``.
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


def weight_notes(study: Study, counts_by_kind: Dict[str, list],
                 classes) -> List[str]:
    """What the class-balanced weights of the study's CB-type loss variants
    are on its statistics: uniform weights make CB its unweighted base."""
    import numpy as np

    from mmseg_longtail.models.losses.base import (effective_number_weights,
                                                   resolve_beta)
    out = []
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
            text = (f'{loss.label(v)}: beta = {beta:.10g} on {kind} counts '
                    'gives class weights with max/min ratio ')
            if ratio < 1.01:
                base = 'Focal' if cfg.get('base') == 'focal' else 'CE'
                text += (f'{ratio:.6f}: uniform but for rounding, so the '
                         f'loss is its unweighted base ({base}).')
            else:
                text += f'{ratio:.3g} (' + ', '.join(
                    f'{c} {x:.2f}' for c, x in zip(classes or [], w)) + ').'
            out.append(text)
    return out


def identical_runs(study: Study, finished: Dict[Cell, object]) -> List[str]:
    """Loss settings whose finished runs gave the same report numbers
    (same data set, model and seed; every summary metric)."""
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
                n = len(pairs)
                out.append(f'{b} and {a} gave identical metrics in ' + (
                    'the one paired run' if n == 1 else
                    f'all {n} paired runs') + ' (same model and seed).')
    return out


# a class counts as segmented by a run when its report IoU reaches
# SEGMENTED_IOU (%); a run that segments at most COLLAPSE_MAX_CLASSES classes
# has collapsed (predicts one or two classes nearly everywhere)
SEGMENTED_IOU, COLLAPSE_MAX_CLASSES = 1.0, 2


def degenerate_notes(study: Study, finished: Dict[Cell, object],
                     classes: Sequence[str]) -> List[str]:
    """Which classes each finished loss setting never segments (report IoU
    below SEGMENTED_IOU in every seed) and which runs collapsed, so that a
    row with a tail mIoU of 0.00 or a near-zero mIoU is explained on the
    page rather than left to look like a bug."""
    # model -> the classes missed -> the settings that miss exactly those
    never: Dict[str, Dict[Tuple[str, ...], List[str]]] = {}
    collapsed = []
    for m in study.models:
        settings = {}
        for c, run in finished.items():
            if c.model == m and run.report and run.report.per_class_iou:
                settings.setdefault((c.loss, c.variant), []).append(
                    (c, run.report.per_class_iou))
        # in the spec's order of losses and settings
        order = [(lo, v.tag) for lo, loss in study.losses.items()
                 for v in loss.variants]
        for lo, tag in [k for k in order if k in settings]:
            runs, loss = settings[(lo, tag)], study.losses[lo]
            label = loss.label(loss.variant(tag))
            missed = tuple(
                classes[i] for i in range(len(classes))
                if all(per[i] is not None and per[i] < SEGMENTED_IOU
                       for _, per in runs))
            if missed:
                never.setdefault(m, {}).setdefault(missed, []).append(label)
            for c, per in runs:
                hit = [classes[i] for i, v in enumerate(per)
                       if v is not None and v >= SEGMENTED_IOU]
                if len(hit) <= COLLAPSE_MAX_CLASSES:
                    collapsed.append(
                        f'{label}, seed {c.seed} ({study.models[m].title}): '
                        f'only {", ".join(hit) or "no class"}')
    out = []
    for m, groups in never.items():
        # most classes missed first, then in the spec's order
        for missed, labels in sorted(groups.items(),
                                     key=lambda kv: -len(kv[0])):
            out.append(f'{study.models[m].title}: {", ".join(labels)} '
                       f'never segment{"s" if len(labels) == 1 else ""} '
                       f'{", ".join(missed)} (IoU below {SEGMENTED_IOU:g}% '
                       'in every finished seed).')
    out.append('Collapsed runs (at most '
               f'{COLLAPSE_MAX_CLASSES} classes with IoU of '
               f'{SEGMENTED_IOU:g}% or more): ' +
               ('; '.join(collapsed) if collapsed else 'none') + '.')
    return out


# below this many degrees of freedom the pooled seed std is called rough
# (with 1, its 90% interval spans about 0.5x to 16x the estimate)
ROUGH_NOISE_DOF = 4


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

    @property
    def dof_text(self) -> str:
        """'N degrees of freedom', flagged rough below ROUGH_NOISE_DOF."""
        return (f'{self.dof} degree{"s" if self.dof != 1 else ""} of '
                'freedom' + ('; a rough estimate'
                             if self.dof < ROUGH_NOISE_DOF else ''))


def seed_noise(values: Dict[str, List[float]]) -> Optional[SeedNoise]:
    """Pooled seed std of ``values`` (loss -> one value per seed); None
    when no loss has two seeds."""
    stds = {lo: mean_std(v)[1] for lo, v in values.items() if len(v) > 1}
    if not stds:
        return None
    return SeedNoise(
        math.sqrt(sum(sd**2 for sd in stds.values()) / len(stds)),
        sum(len(values[lo]) - 1 for lo in stds), stds)


def noise_sentences(model_title: str,
                    values: Dict[str, List[float]],
                    labels: Dict[str, str], metric_label: str) -> List[str]:
    """Sentences comparing each loss with CE against the seed noise."""
    sn = seed_noise(values)
    if sn is None:
        return []
    pooled, stds = sn.sigma, sn.stds
    noise = sn.of_difference()
    names = ', '.join(labels[lo] for lo in stds)
    out = [f'**{model_title}, {metric_label}:** seed std σ = {pooled:.2f} '
           f'points (pooled over {names}: {sn.dof_text}); two runs '
           'differing only in the seed differ by about '
           f'√2σ = {noise:.2f}.']
    widest = max(stds, key=stds.get)
    if len(stds) > 1 and stds[widest] > 0:
        # pooling assumes every loss is as seed-sensitive as the others;
        # name the widest spread and σ without it, so one unstable loss
        # cannot silently widen the noise band of all the others
        rest = [sd**2 for lo, sd in stds.items() if lo != widest]
        out.append(f'Widest spread: {labels[widest]}, std '
                   f'{stds[widest]:.2f} over '
                   f'{len(values[widest])} seeds; without it σ = '
                   f'{math.sqrt(sum(rest) / len(rest)):.2f}.')
    base = values.get('ce')
    if base:
        ce = mean_std(base)[0]
        small, large = [], []
        for lo, v in values.items():
            if lo == 'ce' or not v:
                continue
            d = mean_std(v)[0] - ce
            # "within" includes equality: with zero noise (every seed of
            # every loss at the same value, e.g. a tail IoU of 0) an equal
            # mean is no difference at all
            (small if abs(d) <= noise else large).append(
                f'{labels[lo]} ({d:+.2f})')
        if small:
            out.append('Differences from CE within the seed noise '
                       f'(not evidence either way): {", ".join(small)}.')
        if large:
            out.append(f'Beyond the seed noise: {", ".join(large)}.')
    return out


@dataclass
class SelectionMargin:
    """How far a sweep's chosen setting leads its runner-up on the
    selection split (means over the sweep seeds)."""
    loss: str  # e.g. 'BLV'
    chosen: str  # setting labels, e.g. 'sigma=2'
    runner_up: str
    margin: float


def margin_sentences(model_title: str, margins: Sequence[SelectionMargin],
                     noise: SeedNoise, sweep_seeds: int,
                     metric_label: str = 'mIoU') -> List[str]:
    """Sentences saying which sweeps chose beyond the selection split's
    seed noise and which did not separate their settings."""
    if not margins:
        return []
    band = noise.of_difference(sweep_seeds)
    between = '√2σ' if sweep_seeds == 1 else f'σ√(2/{sweep_seeds})'
    seeds = f'{sweep_seeds} sweep seed{"s" if sweep_seeds != 1 else ""}'
    out = [f'**{model_title}, selection margins:** each sweep\'s chosen '
           'setting against its runner-up on the selection split, and '
           f'that split\'s seed noise of {metric_label} (σ = '
           f'{noise.sigma:.2f} points, pooled over the seeds of the reported '
           f'settings, CE\'s included: {noise.dof_text}); two settings\' means '
           f'over {seeds} differ by about {between} = {band:.2f} by the '
           'seed alone.']

    def name(m: SelectionMargin) -> str:
        return f'{m.loss} (`{m.chosen}` over `{m.runner_up}`, ' \
            f'{m.margin:+.2f})'

    beyond = [name(m) for m in margins if m.margin > band]
    within = [name(m) for m in margins if m.margin <= band]
    if beyond:
        out.append(f'Chosen beyond the noise: {", ".join(beyond)}.')
    if within:
        # the protocol still picks the better mean; say that this pick is
        # not evidence that the setting is better
        out.append('Within the noise (the sweep does not separate the '
                   'settings; the choice follows the protocol, not '
                   f'evidence): {", ".join(within)}.')
    return out


# a run has converged when the selection mIoU of its last CONVERGED_LAST
# evaluations spans at most CONVERGED_SPREAD points (issue #13's rule; at
# least CONVERGED_MIN_EVALS evaluations so that the last ones are late)
CONVERGED_LAST, CONVERGED_SPREAD, CONVERGED_MIN_EVALS = 3, 1.0, 6


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
    iters = int(sched.train_cfg.max_iters)
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
        notes = weight_notes(study, counts, classes) + identical_runs(
            study, self.results.finished)
        if notes:
            md += ['Class-balanced weights on this study\'s statistics '
                   '(computed by the loss code from the counts), and loss '
                   'settings that trained identically:', ''] + [
                       f'- {n}' for n in notes] + ['']
        if classes and self.results.finished:
            md += ['Classes a loss setting does not segment, and collapse. '
                   'A tail mIoU of 0.00 means the setting segments none of '
                   'the tail classes on the report split: the model misses '
                   'the rare classes at this budget while it segments the '
                   'frequent ones, which is not a collapse (a collapsed run '
                   'predicts one or two classes nearly everywhere):', ''] + [
                       f'- {n}' for n in degenerate_notes(
                           study, {c: r for c, r in
                                   self.results.finished.items()
                                   if c.dataset == d}, classes)] + ['']
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
                self.margin_notes(d, swept) + self.defaults_notes(d, swept))

    def margin_notes(self, d: str, swept: Sequence[str]) -> List[str]:
        """Each finished sweep's margin against the selection split's seed
        noise, estimated from the seeds of the reported settings (CE's
        included)."""
        study, out = self.study, []
        metric = study.select_metric
        for m in study.models:
            noise = seed_noise({lo: self._values(d, m, lo, metric,
                                                 'selection')
                                for lo in study.losses})
            margins = []
            for lo in swept:
                sel = self.tables.selections.get((d, m, lo))
                if not sel or not sel.complete:
                    continue
                runner_up = max(((s, t) for t, s in sel.scores.items()
                                 if s is not None and t != sel.variant),
                                default=None)
                if runner_up is None:
                    continue
                loss = study.losses[lo]
                margins.append(SelectionMargin(
                    loss.title, loss.variant(sel.variant).label,
                    loss.variant(runner_up[1]).label,
                    sel.scores[sel.variant] - runner_up[0]))
            if noise and margins:
                out.append('- ' + ' '.join(margin_sentences(
                    study.models[m].title, margins, noise,
                    len(study.seeds), metric)))
        return out + [''] if out else []

    def defaults_notes(self, d: str, swept: Sequence[str]) -> List[str]:
        """Whether each loss base (the grid's default setting) is the
        setting chosen here, so a stale default shows on the page."""
        notes = []
        for lo in swept:
            loss = self.study.losses[lo]
            tag = base_variant(self.study, lo)
            setting = (f'is `{loss.variant(tag).label}`' if tag else
                       'is none of the swept settings')
            chosen = []
            for m in self.study.models:
                sel = self.tables.selections.get((d, m, lo))
                if not sel or not sel.variant:
                    continue
                label = loss.variant(sel.variant).label
                chosen.append(f'{self.study.models[m].title}: `{label}`' +
                              ('' if sel.complete else ' so far'))
            verdict = ('; chosen here: ' + ', '.join(chosen)
                       if chosen else '; nothing chosen yet')
            if chosen and tag is None:
                # say which options keep the base from being a swept setting
                # (e.g. a schedule-specific start iteration)
                from mmengine.config import Config
                base = Config.fromfile(loss.base).loss_decode
                diff = sorted({
                    f'`{k}` (base {base.get(k)!r}, here {x!r})'
                    for m in self.study.models
                    if (sel := self.tables.selections.get((d, m, lo)))
                    and sel.variant
                    for k, x in loss.variant(sel.variant).options
                    if base.get(k) != x})
                if diff:
                    verdict += '; the base differs in ' + ', '.join(diff)
            notes.append(f'- {loss.title}: `{rel_path(loss.base)}` '
                         f'{setting}{verdict}.')
        return ['The loss bases (the settings the grid\'s leaf configs and '
                'any config using them train with) against the choice:',
                ''] + notes + ['']

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
        if rows:
            md += [md_table(['Model', 'Loss', 'mIoU per seed',
                             'mIoU mean ± std', 'tail mIoU mean ± std'],
                            rows, 3)]
        paragraphs = []
        for m in study.models:
            labels = {lo: self._label(d, m, lo) for lo in study.losses}
            for key, label in (('mIoU', 'mIoU'), ('mIoU_tail', 'tail mIoU')):
                sentences = noise_sentences(
                    study.models[m].title,
                    {lo: self._values(d, m, lo, key) for lo in study.losses},
                    labels, label)
                if sentences:
                    paragraphs.append('- ' + ' '.join(sentences))
        return md + (paragraphs + [''] if paragraphs else [
            'No loss has two finished seeds yet, so the seed noise is '
            'unknown: read single-seed differences with care.', ''])

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
              'Load: the machine\'s 1-minute load average at the start / end '
              'of the run (above the core count means other processes '
              f'competed). Last {CONVERGED_LAST}: the spread (max - min) of '
              f'the selection mIoU over the last {CONVERGED_LAST} '
              'evaluations; a run counts as converged when it is at most '
              f'{CONVERGED_SPREAD:.1f} point with at least '
              f'{CONVERGED_MIN_EVALS} evaluations.', '']
        rows, walls, spreads = [], [], []
        cells = [c for c in self.cells if c.dataset == d]
        missing = [c for c in cells if c not in done]
        for c in cells:
            r = done.get(c) or others.get(c)
            loss = study.losses[c.loss]
            label = loss.label(loss.variant(c.variant))
            name = run_name(study, c)
            if r is None:
                rows.append([name, study.models[c.model].title, label,
                             str(c.seed), 'not run yet'] + [''] * 8)
                continue
            load = '/'.join(f'{x[0]:.1f}' if x else '?'
                            for x in (r.loadavg or [None, None]))
            if c in done and r.wall_s:
                walls.append(r.wall_s)
            state = r.state if r.state not in ('running', 'testing') else \
                'running or interrupted'
            sel = r.selection.summary.get('mIoU') if r.selection else None
            rep = r.report.summary if r.report else {}
            spread = curve_spread(r.curve or []) if c in done else None
            if c in done:
                spreads.append((name, spread))
            rows.append([name, study.models[c.model].title, label,
                         str(c.seed), state, str(r.iters or ''),
                         format_duration(r.wall_s) or '',
                         f'{r.train_s_per_iter:.2f}'
                         if r.train_s_per_iter else '', load,
                         '' if spread is None else f'{spread:.2f}',
                         '' if sel is None else f'{sel:.2f}'] + [
                             '' if rep.get(k) is None else f'{rep[k]:.2f}'
                             for k in ('mIoU', 'mIoU_tail')])
        md += [md_table(['Run', 'Model', 'Loss', 'Seed', 'Status', 'Iters',
                         'Wall', 'Train s/iter', 'Load',
                         f'Last {CONVERGED_LAST}', 'Selection mIoU',
                         'Report mIoU', 'Report tail mIoU'], rows, 5)]
        if spreads:
            unconverged = [n for n, x in spreads
                           if x is None or x > CONVERGED_SPREAD]
            md += [f'Convergence: {len(spreads) - len(unconverged)} of '
                   f'{len(spreads)} finished runs converged' + (
                       '.' if not unconverged else
                       '; not converged (or too few evaluations): ' +
                       ', '.join(unconverged) + '.'), '']
        if walls:
            mean = sum(walls) / len(walls)
            md += [f'Finished runs took {format_duration(sum(walls))} in '
                   f'all, {format_duration(mean)} on average (min '
                   f'{format_duration(min(walls))}, max '
                   f'{format_duration(max(walls))})' + (
                       f'; the {len(missing)} remaining runs would take '
                       f'about {format_duration(len(missing) * mean)} at '
                       'that rate.' if missing else '.'), '']
        if self.results.problems:
            md += ['Work dirs that could not be read:', ''] + [
                f'- {p}' for p in self.results.problems] + ['']
        return md

    def write(self) -> str:
        from mmseg_longtail.utils import frequency_groups
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
            if classes:
                md += self.per_class_section(d, classes, counts, groups)
            md += self.curves_section(d)
            md += self.runs_section(d)
        text = '\n'.join(md)
        os.makedirs(self.page_dir, exist_ok=True)
        with open(self.page, 'w') as f:
            f.write(text)
        return text
