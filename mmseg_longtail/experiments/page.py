"""A study's results page (markdown with PNG plots), from its run records.

Everything on the page comes from the run records (plus work dirs of runs
still in progress), so it regenerates on any machine:
``python tools/collect_results.py --study SPEC --page``. The page holds
tables (those of :mod:`.tables`) and plots, with captions saying what the
columns are; it states no conclusions. Reading the numbers is written by
hand in the study's documentation.
"""
import datetime
import math
import os
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from .cells import plan_cells
from .collect import Results, format_duration
from .records import read_json
from .selection import mean_std
from .spec import Study, rel_path
from .tables import (CONVERGED_LAST, CONVERGED_MIN_EVALS, CONVERGED_SPREAD,
                     PaperTables, fmt_mean_std, md_table)


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
    if not values.get(ref):
        return noise, {}
    ref_mean = mean_std(values[ref])[0]
    out = {}
    for lo, v in values.items():
        if lo != ref and v:
            d = mean_std(v)[0] - ref_mean
            out[lo] = (d, noise_mark(d, noise) if noise else None)
    return noise, out


def _setup_rows(study: Study, d: str,
                num_images: Optional[int]) -> List[List[str]]:
    """What the study ran, read from its configs."""
    from mmengine.config import Config
    ds = study.datasets[d]
    data = Config.fromfile(ds.base)
    sched = Config.fromfile(study.schedule_base)
    batch, crop = int(data.train_dataloader.batch_size), tuple(data.crop_size)
    scale = next((t['scale'] for t in data.test_pipeline
                  if t.get('type') == 'Resize'), None)
    opt = sched.optim_wrapper.optimizer
    iters = study.schedule_iters or int(sched.train_cfg.max_iters)
    epochs = (f' ({iters * batch / num_images:.1f} epochs of {num_images} '
              'images)' if num_images else '')
    extra = ', '.join(f'{study.losses[lo].title} ' + ', '.join(
        map(str, study.seeds_of(lo))) for lo in study.losses
        if study.final_seeds(lo))
    if ds.selection == 'carve':
        sel = (f'carved from `train`: whole groups (`{ds.carve.group}`), '
               f'{100 * ds.carve.fraction:.0f}% of the files (seed '
               f'{ds.carve.seed}; lists in '
               f'`{rel_path(osp.join(study.results_dir, "splits", d))}`)')
    else:
        sel = '`val`'
    losses = []
    for lo in study.losses.values():
        text = f'{lo.title}: `{rel_path(lo.base)}`'
        if len(lo.variants) > 1:
            text += ' swept over ' + '; '.join(f'`{v.label}`'
                                               for v in lo.variants)
        elif lo.variants[0].options:
            text += ' with ' + ', '.join(f'`{k}={v!r}`'
                                         for k, v in lo.variants[0].options)
        losses.append(text)
    return [
        ['data', f'{ds.title}: train on `train`' + (
            f', data root `{rel_path(ds.data_root)}`' if ds.data_root
            else '')],
        ['selection split', f'{sel}; each loss\'s setting with the best '
         f'mean {study.select_metric} there is reported'],
        ['report split', f'`{ds.report}`' + (
            ' (also the selection split: nothing held out)'
            if ds.selection == ds.report == 'val' else '')],
        ['input', (f'resized to {scale[0]}x{scale[1]} (w x h); ' if scale
                   else '') + f'crops {crop[0]}x{crop[1]} (h x w), batch '
         f'{batch}; `{rel_path(ds.base)}`'],
        ['models', '; '.join(f'{m.title}: `{rel_path(m.base)}`, '
                             f'{m.aux_label}' for m in study.models.values())],
        ['schedule', f'{opt.type} lr {opt.lr}, momentum '
         f'{opt.get("momentum", "-")}, weight decay '
         f'{opt.get("weight_decay", "-")}; {iters} iterations{epochs}; '
         f'`{rel_path(study.schedule_base)}`'],
        ['seeds', ', '.join(map(str, study.seeds)) + ' for every setting' +
         (f'; the selected setting also: {extra}' if extra else '')],
        ['losses', '; '.join(losses)],
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


class StudyPage:
    """Writes one study's page; ``roots``: the work roots read besides the
    records (named in the regenerate command)."""

    COMPARED = (('mIoU', 'mIoU'), ('mIoU_tail', 'tail mIoU'))

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

    def _values(self, d, m, lo, key) -> List[float]:
        rep = self.tables.rep(d, m, lo)
        return rep.values(key) if rep else []

    def _reference_loss(self) -> Optional[str]:
        return next((k for k, lo in self.study.losses.items()
                     if k == 'ce' or lo.name == 'ce'), None)

    def header(self) -> List[str]:
        study, done = self.study, self.results.finished
        cfg_opts = sorted({tuple(r.cfg_options or ()) for r in done.values()})
        run_cmd = study.command() + (
            ' --cfg-options ' + ' '.join(cfg_opts[0])
            if len(cfg_opts) == 1 and cfg_opts[0] else '')
        page_cmd = (study.command('tools/collect_results.py') + ''.join(
            f' {rel_path(r)}' for r in self.roots) +
            f' --page {rel_path(self.page)}')
        now = datetime.datetime.now().strftime('%Y-%m-%d %H:%M')
        finished = len([c for c in self.cells if c in done])
        md = [f'# {study.title}', '',
              '<!-- generated by tools/collect_results.py --page from the '
              'run records; edit the generator, not this file -->', '',
              f'{finished} of {len(self.cells)} runs finished ({now}; run '
              f'records in `{rel_path(study.results_dir)}/runs`)' + (
                  f'; {len(self.pending)} groups wait for their sweep'
                  if self.pending else '') + '. Regenerate the page, and '
              'reproduce the runs (resumable):', '', '```bash', page_cmd,
              run_cmd, '```', '']
        if len(cfg_opts) > 1:
            md += ['The runs used different `--cfg-options`: ' + '; '.join(
                ' '.join(o) or '(none)' for o in cfg_opts) + '.', '']
        return md + [f'- {n}' for n in study.notes] + (
            [''] if study.notes else [])

    def results_section(self, d: str) -> List[str]:
        t = self.tables
        md = ['## Results', '',
              'Report split, after the last iteration: mean ± sample std '
              'over the seeds of each loss\'s selected setting, in % (ECE, '
              'SCE and DiceErr as fractions); the best mean of a column in '
              'bold.', '', t.table4(d).to_markdown()]
        for m in self.study.models:
            md.append(t.metrics(d, m).to_markdown())
        return md

    def selection_section(self, d: str) -> List[str]:
        table = self.tables.selection(d)
        if table is None:
            return []
        return ['## Selection', '', f'Mean {self.study.select_metric} of '
                'each setting on the selection split over the sweep seeds '
                f'({", ".join(map(str, self.study.seeds))}); the chosen '
                'setting in bold. The report split is never read for it.',
                '', table.to_markdown(title=False)]

    def noise_section(self, d: str) -> List[str]:
        study, rows = self.study, []
        for m in study.models:
            for lo in study.losses:
                rep = self.tables.rep(d, m, lo)
                if rep is None or len(rep.runs) < 2:
                    continue
                per = ', '.join(f'{r.cell["seed"]}: '
                                f'{r.report.summary["mIoU"]:.2f}'
                                for r in rep.runs)
                rows.append([study.models[m].title, rep.label, per,
                             fmt_mean_std(rep.values('mIoU')),
                             fmt_mean_std(rep.values('mIoU_tail'))])
        if not rows:
            return []
        return ['## Seed spread', '', 'Report split, the selected settings '
                'with two or more finished seeds.', '',
                md_table(['Model', 'Loss', 'mIoU per seed', 'mIoU',
                          'tail mIoU'], rows, 3)]

    def comparison_section(self, d: str) -> List[str]:
        """Per model: the pooled seed std of mIoU and tail mIoU, and each
        loss's difference from CE's mean with its noise mark."""
        study, ce = self.study, self._reference_loss()
        if ce is None:
            return []
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
                row = [self.tables.label(d, m, lo)]
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
        md = ['## Comparison with CE', '',
              'Report split, means over the seeds of the selected settings. '
              'Pooled σ: root mean square of the sample stds of the settings '
              'with two or more seeds. Difference: the loss\'s mean minus '
              f'CE\'s (points); `{BEYOND_NOISE}` where |difference| > √2σ '
              f'(two runs that differ only in the seed), else '
              f'`{WITHIN_NOISE}`.', '']
        if pooled:
            md += [md_table(['Model', 'Metric', 'pooled σ',
                             'degrees of freedom', '√2σ', 'settings pooled'],
                            pooled, 2)]
        return md + tables

    def per_class_section(self, d: str, counts, groups) -> List[str]:
        import numpy as np

        from mmseg_longtail.analysis.plot_class_iou import plot
        study, md = self.study, []
        group_of = {i: g[:1].upper() for g, ids in (groups or {}).items()
                    for i in ids}
        for m in study.models:
            classes = self.tables.classes(d, m)
            if classes is None:
                continue
            order = (sorted(range(len(classes)), key=lambda i: -counts[i])
                     if counts else list(range(len(classes))))
            total = float(sum(counts)) if counts else None
            names = [f'{classes[i]} ({group_of.get(i, "-")}' + (
                f', {100 * counts[i] / total:.1f}%' if total else '') + ')'
                for i in order]
            table = self.tables.table6(d, m, order, names)
            md += [f'**{study.models[m].title}**', '',
                   table.to_markdown(title=False)]
            records, labels = [], []
            for label, values, _, _ in table.rows:
                per = [None] * len(classes)
                for i, name in zip(order, names):
                    v = values.get(('', name))
                    per[i] = mean_std(v)[0] if v else None
                if any(p is not None for p in per):
                    records.append(dict(classes=list(classes),
                                        per_class=dict(IoU=per)))
                    labels.append(label)
            if records and counts:
                png = f'{self.stem}_class_iou_{m}.png'
                plot(records, labels, np.asarray(counts, float), 'IoU',
                     osp.join(self.page_dir, png),
                     f'{study.datasets[d].title}, {study.models[m].title}: '
                     'IoU vs training share (mean over seeds)')
                md += [f'![{study.models[m].title}: per-class IoU against '
                       f'training frequency]({png})', '']
        if not md:
            return []
        return ['## Per-class IoU', '',
                'IoU (%) per class on the report split, mean ± std over the '
                'seeds; classes from the most to the least frequent in the '
                'training pixels (group H / B / T, share).', ''] + md

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
            series = [(f'{rep.label} (seed {rep.runs[0].cell["seed"]})',
                       rep.runs[0].curve)
                      for lo in dict.fromkeys([self._reference_loss(), best])
                      if lo and (rep := self.tables.rep(d, m, lo))
                      and rep.runs[0].curve]
            if series:
                png = f'{self.stem}_curves_{m}.png'
                _plot_curves(osp.join(self.page_dir, png),
                             f'{study.datasets[d].title}, '
                             f'{study.models[m].title}', series, 'mIoU')
                md.append(f'![{study.models[m].title}: validation curves]'
                          f'({png})')
        return ['## Training curves', '', 'mIoU on the selection split at '
                'each validation, for CE and the best loss of each model.',
                ''] + md + [''] if md else []

    def runs_section(self, d: str) -> List[str]:
        done = [r for c, r in self.results.finished.items()
                if c.dataset == d]
        walls = [r.wall_s for r in done if r.wall_s]
        table = self.tables.runs([c for c in self.cells if c.dataset == d],
                                 d)
        converged = sum(row[1].get(('', 'converged')) == 'yes'
                        for row in table.rows)
        md = ['## Runs', '',
              'Wall: the launcher\'s record (start-up, training, '
              'evaluation; summed over resumed attempts). Train s/iter: '
              'mean of mmengine\'s `time` (data loading included). Last '
              f'{CONVERGED_LAST}: max - min of the selection mIoU over the '
              f'last {CONVERGED_LAST} evaluations; converged: `yes` when at '
              f'most {CONVERGED_SPREAD:.1f} point, `too few` with fewer than '
              f'{CONVERGED_MIN_EVALS} evaluations.', '',
              table.to_markdown(title=False)]
        if done:
            md += [md_table(['Finished', 'Converged', 'Wall in all',
                             'Wall mean', 'Wall min', 'Wall max'], [[
                                 str(len(done)), str(converged)] + (
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
        os.makedirs(self.page_dir, exist_ok=True)  # plots go beside it
        md = self.header()
        for d, ds in self.study.datasets.items():
            if len(self.study.datasets) > 1:
                md += [f'# {ds.title}', '']
            ref = next((r for c, r in self.results.finished.items()
                        if c.dataset == d and r.classes), None)
            stats = (read_json(ds.class_stats_file, 'class statistics')
                     if osp.isfile(ds.class_stats_file) else {})
            classes = (ref.classes if ref else None) or stats.get('classes')
            counts = ((ref.train_counts if ref else None)
                      or stats.get('pixel_counts'))
            groups = (ref.groups if ref else None) or (
                frequency_groups(counts) if counts else None)
            md += ['## Setup', '', md_table(['', ''], _setup_rows(
                self.study, d, stats.get('num_images')), 2)]
            if groups and classes:
                md += ['Frequency groups (terciles of training pixels): ' +
                       '; '.join(f'{g} = ' + ', '.join(
                           classes[i] for i in groups[g])
                           for g in ('head', 'body', 'tail')) + '.', '']
            for section in (self.results_section, self.selection_section,
                            self.noise_section, self.comparison_section):
                md += section(d)
            md += self.per_class_section(d, counts, groups)
            md += self.curves_section(d) + self.runs_section(d)
        text = '\n'.join(md)
        with open(self.page, 'w') as f:
            f.write(text)
        return text
