"""A study's results page (tables and plots) from its run records, by
``tools/collect_results.py --page``; it states no conclusions."""
import datetime
import math
import os
import os.path as osp
from typing import Dict, List, NamedTuple, Optional, Sequence

from .cells import plan_cells
from .collect import Results, format_duration
from .records import atomic_write_text, read_json
from .selection import mean_std
from .spec import Study, rel_path
from .tables import (CONVERGED_LAST, CONVERGED_MIN_EVALS, CONVERGED_SPREAD,
                     PaperTables, fmt_mean_std, md_table)

WITHIN_NOISE, BEYOND_NOISE = 'within noise', 'beyond noise'
COMPARED = (('mIoU', 'mIoU'), ('mIoU_tail', 'tail mIoU'))  # with CE


class SeedNoise(NamedTuple):
    """The seed std of one metric, pooled over settings with several seeds."""
    sigma: float
    dof: int  # each setting with n seeds adds n - 1
    stds: Dict[str, float]  # loss -> its own sample std

    def of_difference(self, n: int = 1) -> float:
        """Std of the difference of two ``n``-seed means: σ·√(2/n)."""
        return self.sigma * math.sqrt(2 / n)


def seed_noise(values: Dict[str, List[float]]) -> Optional[SeedNoise]:
    """Root mean square of the sample stds of losses with 2+ seeds, or None."""
    stds = {lo: mean_std(v)[1] for lo, v in values.items() if len(v) > 1}
    if not stds:
        return None
    return SeedNoise(
        math.sqrt(sum(sd**2 for sd in stds.values()) / len(stds)),
        sum(len(values[lo]) - 1 for lo in stds), stds)


def noise_mark(difference: float, noise: SeedNoise) -> str:
    """Beyond noise when |difference| > √2σ, the spread of two runs that
    differ only in the seed (with no noise only an equal mean is within)."""
    return (BEYOND_NOISE if abs(difference) > noise.of_difference() else
            WITHIN_NOISE)


def compare_with_reference(values: Dict[str, List[float]], ref: str):
    """The seed noise of ``values`` and each other loss's mean minus
    ``ref``'s with its noise mark (None without noise)."""
    noise = seed_noise(values)
    means = {lo: mean_std(v)[0] for lo, v in values.items() if v}
    diffs = {lo: x - means[ref] for lo, x in means.items()
             if lo != ref and ref in means}
    return noise, {lo: (d, noise and noise_mark(d, noise))
                   for lo, d in diffs.items()}


def _section(title: str, caption: str, body: List[str]) -> List[str]:
    return [f'## {title}', '', caption, ''] + body if body else []


def _setup_rows(study: Study, d: str,
                num_images: Optional[int]) -> List[List[str]]:
    from mmengine.config import Config
    ds, sched = study.datasets[d], Config.fromfile(study.schedule_base)
    data, opt = Config.fromfile(ds.base), sched.optim_wrapper.optimizer
    batch, crop = int(data.train_dataloader.batch_size), tuple(data.crop_size)
    scale = next((t['scale'] for t in data.test_pipeline
                  if t.get('type') == 'Resize'), None)
    iters = study.schedule_iters or int(sched.train_cfg.max_iters)
    extra = ', '.join(f'{study.losses[lo].title} ' + ', '.join(
        map(str, study.seeds_of(lo))) for lo in study.losses
        if study.final_seeds(lo))
    carved = (
        f'carved from `train`: whole groups (`{ds.carve.group}`), '
        f'{100 * ds.carve.fraction:.0f}% of the files (seed {ds.carve.seed}'
        f'; lists in `{rel_path(osp.join(study.results_dir, "splits", d))}`)'
        if ds.selection == 'carve' else '`val`')
    return [
        ['data', f'{ds.title}: train on `train`' + (
            f', data root `{rel_path(ds.data_root)}`' if ds.data_root
            else '')],
        ['selection split', f'{carved}; each loss\'s setting with the best '
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
         f'{opt.get("weight_decay", "-")}; {iters} iterations' + (
             f' ({iters * batch / num_images:.1f} epochs of {num_images} '
             'images)' if num_images else '') +
         f'; `{rel_path(study.schedule_base)}`'],
        ['seeds', ', '.join(map(str, study.seeds)) + ' for every setting' +
         (f'; the selected setting also: {extra}' if extra else '')],
        ['losses', '; '.join(f'{lo.title}: `{rel_path(lo.base)}`' + (
            ' swept over ' + '; '.join(f'`{v.label}`' for v in lo.variants)
            if len(lo.variants) > 1 else ' with ' + ', '.join(
                f'`{k}={v!r}`' for k, v in lo.variants[0].options)
            if lo.variants[0].options else '')
            for lo in study.losses.values())],
    ]


class StudyPage:
    """One study's page; ``roots``: the work roots read with the records."""

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
        self.ce = next((k for k, lo in self.study.losses.items()
                        if k == 'ce' or lo.name == 'ce'), None)

    def _values(self, d: str, m: str, key: str) -> Dict[str, List[float]]:
        """Loss -> ``key`` of each seed of its reported setting."""
        return {lo: rep.values(key) for lo in self.study.losses
                if (rep := self.tables.rep(d, m, lo))}

    def header(self) -> List[str]:
        study, done = self.study, self.results.finished
        cfg_opts = sorted({tuple(r.cfg_options or ()) for r in done.values()})
        run_cmd = study.command() + (
            ' --cfg-options ' + ' '.join(cfg_opts[0])
            if len(cfg_opts) == 1 and cfg_opts[0] else '')
        page_cmd = ' '.join([study.command('tools/collect_results.py')] + [
            rel_path(r) for r in self.roots] + ['--page', rel_path(self.page)])
        now = datetime.datetime.now().strftime('%Y-%m-%d %H:%M')
        finished = sum(c in done for c in self.cells)
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
        return _section(
            'Results', 'Report split, after the last iteration: mean ± '
            'sample std over the seeds of each loss\'s selected setting, in '
            '% (ECE, SCE and DiceErr as fractions); the best mean of a '
            'column in bold.', [self.tables.table4(d).to_markdown()] + [
                self.tables.metrics(d, m).to_markdown()
                for m in self.study.models])

    def selection_section(self, d: str) -> List[str]:
        table = self.tables.selection(d)
        return _section(
            'Selection', f'Mean {self.study.select_metric} of each setting '
            'on the selection split over the sweep seeds '
            f'({", ".join(map(str, self.study.seeds))}); the chosen setting '
            'in bold. The report split is never read for it.',
            [table.to_markdown(title=False)] if table else [])

    def noise_section(self, d: str) -> List[str]:
        rows = [[self.study.models[m].title, rep.label, ', '.join(
            f'{r.cell["seed"]}: {r.report.summary["mIoU"]:.2f}'
            for r in rep.runs), fmt_mean_std(rep.values('mIoU')),
            fmt_mean_std(rep.values('mIoU_tail'))]
            for m in self.study.models for lo in self.study.losses
            if (rep := self.tables.rep(d, m, lo)) and len(rep.runs) > 1]
        header = ['Model', 'Loss', 'mIoU per seed', 'mIoU', 'tail mIoU']
        return _section('Seed spread', 'Report split, the selected settings '
                        'with two or more finished seeds.',
                        [md_table(header, rows, 3)] if rows else [])

    def comparison_section(self, d: str) -> List[str]:
        header = ['Loss'] + [name + s for _, name in COMPARED
                             for s in (' − CE', ' pooled σ', ' vs noise')]
        pooled, tables = [], []
        for m in self.study.models if self.ce else ():
            title = self.study.models[m].title
            columns = [compare_with_reference(self._values(d, m, k), self.ce)
                       for k, _ in COMPARED]
            pooled += [[title, name, f'{n.sigma:.2f}', str(n.dof),
                        f'{n.of_difference():.2f}', str(len(n.stds))]
                       for (_, name), (n, _) in zip(COMPARED, columns) if n]
            rows = []
            for lo in self.study.losses:
                cells = []
                for noise, diffs in columns:
                    diff, mark = diffs.get(lo, (None, None))
                    cells += ['—' if diff is None else f'{diff:+.2f}',
                              f'{noise.sigma:.2f}' if noise else '—',
                              mark or '—']
                if any(lo in diffs for _, diffs in columns):
                    rows.append([self.tables.rep(d, m, lo).label] + cells)
            if rows:
                tables += [f'**{title}**', '', md_table(header, rows)]
        if pooled and tables:
            tables.insert(0, md_table(
                ['Model', 'Metric', 'pooled σ', 'degrees of freedom', '√2σ',
                 'settings pooled'], pooled, 2))
        return _section(
            'Comparison with CE', 'Report split, means over the seeds of the '
            'selected settings. Pooled σ: root mean square of the sample '
            'stds of the settings with two or more seeds. Difference: the '
            'loss\'s mean minus CE\'s (points); '
            f'`{BEYOND_NOISE}` where |difference| > √2σ (two runs that '
            f'differ only in the seed), else `{WITHIN_NOISE}`.', tables)

    def per_class_section(self, d: str, counts, groups) -> List[str]:
        from mmseg_longtail.analysis.plot_class_iou import plot
        study, md = self.study, []
        group_of = {i: g[:1].upper() for g, ids in (groups or {}).items()
                    for i in ids}
        for m in study.models:
            classes = self.tables.classes(d, m)
            if classes is None:
                continue
            order = sorted(range(len(classes)),
                           key=lambda i: -counts[i] if counts else 0)
            names = [f'{classes[i]} ({group_of.get(i, "-")}' + (
                f', {100 * counts[i] / sum(counts):.1f}%' if counts else '')
                + ')' for i in order]
            table = self.tables.table6(d, m, order, names)
            title = study.models[m].title
            md += [f'**{title}**', '', table.to_markdown(title=False)]
            means = [(label, [v and mean_std(v)[0] for v in map(
                values.get, table.keys)]) for label, values, *_ in table.rows]
            rows = [(label, per) for label, per in means  # for the plot
                    if any(v is not None for v in per)]
            if rows and counts:
                png = f'{self.stem}_class_iou_{m}.png'
                plot([dict(classes=[classes[i] for i in order],
                           per_class=dict(IoU=per)) for _, per in rows],
                     [label for label, _ in rows],
                     [counts[i] for i in order], 'IoU',
                     osp.join(self.page_dir, png),
                     f'{study.datasets[d].title}, {title}: IoU vs training '
                     'share (mean over seeds)')
                md += [f'![{title}: per-class IoU against training '
                       f'frequency]({png})', '']
        return _section(
            'Per-class IoU', 'IoU (%) per class on the report split, mean ± '
            'std over the seeds; classes from the most to the least frequent '
            'in the training pixels (group H / B / T, share).', md)

    def curves_section(self, d: str) -> List[str]:
        """Selection-split curves of CE's and the best loss's first seed."""
        from matplotlib.figure import Figure
        study, md = self.study, []
        for m in study.models:
            means = {lo: mean_std(v)[0]
                     for lo, v in self._values(d, m, 'mIoU').items() if v}
            best = max(means, key=means.get, default=None)
            reps = [rep for lo in dict.fromkeys([self.ce, best])
                    if best and (rep := self.tables.rep(d, m, lo))
                    and rep.runs[0].curve]
            if not reps:
                continue
            ax = Figure(figsize=(7, 4)).add_subplot()
            for rep in reps:
                pts = [(p['iter'], p['mIoU']) for p in rep.runs[0].curve
                       if 'mIoU' in p]
                if pts:
                    ax.plot(*zip(*pts), marker='o', label=f'{rep.label} '
                            f'(seed {rep.runs[0].cell["seed"]})')
            title, png = study.models[m].title, f'{self.stem}_curves_{m}.png'
            ax.set(xlabel='iteration', title=f'{study.datasets[d].title}, '
                   f'{title}', ylabel='mIoU on the selection split (%)')
            ax.grid(alpha=0.3)
            ax.legend()
            ax.figure.tight_layout()
            ax.figure.savefig(osp.join(self.page_dir, png), dpi=100)
            md.append(f'![{title}: validation curves]({png})')
        return _section(
            'Training curves', 'mIoU on the selection split at each '
            'validation, for CE and the best loss of each model.',
            md + [''] if md else [])

    def runs_section(self, d: str) -> List[str]:
        done = [r for c, r in self.results.finished.items() if c.dataset == d]
        walls = [r.wall_s for r in done if r.wall_s]
        table = self.tables.runs([c for c in self.cells if c.dataset == d],
                                 d)
        md = [table.to_markdown(title=False)]
        if done:
            converged = sum(values.get(('', 'converged')) == 'yes'
                            for _, values, *_ in table.rows)
            stats = [format_duration(f(walls)) if walls else '' for f in (
                sum, lambda w: sum(w) / len(w), min, max)]
            md.append(md_table(['Finished', 'Converged', 'Wall in all',
                                'Wall mean', 'Wall min', 'Wall max'],
                               [[str(len(done)), str(converged)] + stats], 0))
        if self.results.problems:
            md += ['Work dirs that could not be read:', ''] + [
                f'- {p}' for p in self.results.problems] + ['']
        return _section(
            'Runs', 'Wall: the launcher\'s record (start-up, training, '
            'evaluation; summed over resumed attempts). Train s/iter: mean '
            'of mmengine\'s `time` (data loading included). Last '
            f'{CONVERGED_LAST}: max - min of the selection mIoU over the '
            f'last {CONVERGED_LAST} evaluations; converged: `yes` when at '
            f'most {CONVERGED_SPREAD:.1f} point, `too few` with fewer than '
            f'{CONVERGED_MIN_EVALS} evaluations.', md)

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
            classes = (ref and ref.classes) or stats.get('classes')
            counts = (ref and ref.train_counts) or stats.get('pixel_counts')
            groups = (ref and ref.groups) or (
                frequency_groups(counts) if counts else None)
            md += ['## Setup', '', md_table(['', ''], _setup_rows(
                self.study, d, stats.get('num_images')), 2)]
            if groups and classes:
                md += ['Frequency groups (terciles of training pixels): ' +
                       '; '.join(f'{g} = ' + ', '.join(
                           classes[i] for i in groups[g])
                           for g in ('head', 'body', 'tail')) + '.', '']
            md += (self.results_section(d) + self.selection_section(d) +
                   self.noise_section(d) + self.comparison_section(d) +
                   self.per_class_section(d, counts, groups) +
                   self.curves_section(d) + self.runs_section(d))
        text = '\n'.join(md)
        atomic_write_text(self.page, text)
        return text
