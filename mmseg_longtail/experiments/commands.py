"""The commands of tools/grid.py, tools/collect_results.py and
tools/misc/generate_grid_configs.py (each tool parses its arguments)."""
import os.path as osp
from dataclasses import replace
from typing import Optional, Sequence

from .collect import gather
from .launch import LaunchOptions, SlurmOptions, make_plan, run_study
from .page import StudyPage
from .records import RecordError, atomic_write_text
from .render import write_leaf_configs
from .spec import SpecError, Study, StudySource
from .tables import PaperTables


def _load(source: StudySource) -> Study:
    try:
        return source.load()
    except (OSError, SpecError, ValueError) as e:
        raise SystemExit(f'--study: {e}')


def grid(source: StudySource, datasets: Sequence[str], models: Sequence[str],
         losses: Sequence[str], seeds: Optional[Sequence[int]],
         launch: LaunchOptions, slurm: SlurmOptions) -> int:
    """Plan and run a study's cells."""
    s = _load(source)
    try:
        plan = make_plan(s, datasets, models, losses, seeds, launch.dry_run)
    except (ValueError, KeyError, RecordError) as e:
        raise SystemExit(str(e))
    return run_study(s, plan, launch, slurm, source)


def collect(source: StudySource, roots: Sequence[str], page: Optional[str],
            tables: Sequence[str], select_metric: Optional[str],
            out_dir: Optional[str], formats: Sequence[str],
            print_format: str, no_records: bool) -> int:
    """Tables (or the page) from a study's records and work dirs."""
    s = _load(source)
    if select_metric:
        s = replace(s, select_metric=select_metric)
    roots = roots or ([s.work_root] if osp.isdir(s.work_root) else [])
    try:
        results = gather(s, roots, use_records=not no_records)
    except (RecordError, FileNotFoundError) as e:
        raise SystemExit(str(e))
    for p in results.problems:
        print(f'warning: {p}')
    if page is not None:
        out = page or s.page
        if not out:
            raise SystemExit('the spec names no page: give --page OUT.md')
        StudyPage(results, out, [r for r in roots
                                 if osp.abspath(r) != s.work_root]).write()
        print(f'wrote {out} ({len(results.finished)} finished runs)')
        return 0
    built = PaperTables(results).build(tables)
    no_report = [r.name for r in results.finished.values() if not r.report]
    if print_format != 'none':
        print(f'{len(results.finished)} finished runs, '
              f'{len(results.others)} unfinished or failed (study '
              f'{s.name}; records in {s.results_dir}; work dirs under '
              f'{", ".join(map(str, roots)) or "-"})\n')
        if no_report:
            print(f'{len(no_report)} finished runs have no report-split '
                  'evaluation (run tools/test.py on their final checkpoint; '
                  'tools/grid.py does): ' + ', '.join(no_report[:5]) + '\n')
        for t in built:
            print(t.render(print_format))
    if out_dir:
        for t in built:
            for fmt in formats:
                atomic_write_text(osp.join(out_dir, f'{t.name}.{fmt}'),
                                  t.render(fmt))
        print(f'wrote {len(built) * len(formats)} files to {out_dir}')
    return 0


def generate_configs(study: Optional[str], check: bool) -> int:
    """Write (or check) the leaf configs of a spec with a ``config_dir``."""
    s = _load(StudySource(study))
    if not s.config_dir:
        raise SystemExit(f'{s.path}: the spec sets no `config_dir`; its '
                         'configs are rendered by tools/grid.py at run time')
    changes = write_leaf_configs(s, check)
    for c in changes:
        print(c)
    n = len(s.datasets) * len(s.models) * len(s.losses)
    print(f'{n} leaf configs of {s.name}, {len(changes)} '
          + ('out of date' if check else 'changed'))
    return int(check and bool(changes))
