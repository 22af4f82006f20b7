"""Config files of cells: the leaf configs of a study and their data bases,
both the paper grid's committed ones (``configs/grid/<loss>/*.py``, each
loss's base setting; :func:`write_leaf_configs`) and those a launcher renders
for every cell into ``<work_root>/_grid/configs/`` (with the study's data
root, statistics and splits; :func:`render_cell_configs`).
"""
import functools
import glob
import itertools
import os
import os.path as osp
from typing import Any, Dict, List, Optional, Tuple

from mmseg_longtail.utils.run_files import write_if_changed

from .cells import Cell, config_stem, stem
from .spec import (BASE_ROOT, DatasetSpec, LossSpec, ModelSpec, Study, Variant,
                   rel_path)
from .splits import ensure_carve

RUNTIME_BASE = osp.join(BASE_ROOT, 'default_runtime.py')
GRID_DIR_NAME = '_grid'
LEAF_MARKER = 'written by tools/misc/generate_grid_configs.py'
_AUX_COMMENT = {
    'ce': '# The loss replaces the decode head\'s CE; the auxiliary head '
    'keeps CE.\n',
    'none': '# The loss replaces the decode head\'s CE; no auxiliary head, as '
    'in the\n# papers\' networks (the loss alone trains the encoder).\n',
    'same': '# The loss replaces the CE of both heads (the auxiliary head\'s '
    'weight below).\n',
}


def _literal(d: Dict[str, Any]) -> str:
    return 'dict(' + ', '.join(f'{k}={v!r}' for k, v in d.items()) + ')'


def _head(fields: List[str]) -> str:
    """A head of the data set's classes with ``loss_decode=dict(<the loss
    base's dict>, <fields>)``; ``_delete_`` drops the model base's CE keys
    instead of merging into them."""
    pad = '\n' + ' ' * 12
    body = ''.join(f'{pad}{f},' for f in ['_base_.loss_decode'] + fields)
    return ('dict(\n        num_classes=_base_.num_classes,\n'
            f'        loss_decode=dict({body}{pad}_delete_=True))')


def leaf_config_text(study: Study, ds: DatasetSpec, model: ModelSpec,
                     loss: LossSpec, variant: Variant, data_base: str,
                     base_prefix: Optional[str], note: str = '') -> str:
    """Text of a leaf config: the ``_base_`` composition of model, data
    set, loss, runtime and schedule, paths under configs/_base_/ written
    relative to ``base_prefix`` if given (e.g. ``'../../_base_/'``). The
    data set's values reach the model as ``_base_.<name>`` (a base cannot
    read a sibling base's variables; the leaf can)."""

    def base(path: str) -> str:
        if base_prefix is not None and path.startswith(BASE_ROOT + os.sep):
            return base_prefix + osp.relpath(path, BASE_ROOT)
        return path

    bases = (model.base, data_base, loss.base, RUNTIME_BASE,
             study.schedule_base)
    fields = ['class_counts=_base_.class_stats_file'] if loss.counted else []
    fields += [f'{k}={v!r}' for k, v in variant.options]
    d = model.size_divisor
    preproc = '    data_preprocessor=dict(size=_base_.crop_size),\n'
    if d > 1:
        preproc = (f'    # pad crops up to multiples of {d}, as the model '
                   'needs\n    data_preprocessor=dict(\n'
                   f'        size=tuple(-(-s // {d}) * {d} for s in '
                   '_base_.crop_size)),\n')
    aux = {'none': 'None', 'ce': 'dict(num_classes=_base_.num_classes)'}.get(
        model.aux) or _head(fields + [f'loss_weight={model.aux_weight!r}'])
    return (f'# {loss.label(variant)} loss, {model.title}, {ds.title}: '
            f'one cell of {study.title}\n' +
            ''.join(f'# {line}\n' for line in note.splitlines()) +
            '_base_ = [\n' + ''.join(f"    '{base(b)}',\n" for b in bases) +
            ']\n' + _AUX_COMMENT[model.aux] + 'model = dict(\n' + preproc +
            f'    decode_head={_head(fields)},\n'
            f'    auxiliary_head={aux},\n)\n' +
            schedule_text(study.schedule_base, study.schedule_iters))


@functools.lru_cache(maxsize=None)
def schedule_text(base: str, iters: Optional[int]) -> str:
    """Overrides that run the schedule ``base`` for ``iters`` iterations (a
    study's ``schedule.iters``; None: no overrides): its scheduler
    milestones, validation and checkpoint intervals scaled by
    ``iters / max_iters``."""
    if iters is None:
        return ''
    from mmengine.config import Config
    cfg = Config.fromfile(base)
    old = int(cfg.train_cfg.max_iters)

    def scaled(x: int) -> int:
        return x if x == 0 else max(1, round(x * iters / old))

    schedulers = cfg.get('param_scheduler') or []
    if isinstance(schedulers, dict):
        schedulers = [schedulers]
    lines = [f'# the study\'s schedule: {iters} iterations instead of the '
             f'base\'s {old}, milestones and intervals scaled']
    items = [{
        k: scaled(v) if k in ('begin', 'end') and isinstance(v, int) else v
        for k, v in sched.items()
    } for sched in schedulers]
    if items:
        lines += ['param_scheduler = ['] + [f'    {_literal(x)},'
                                            for x in items] + [']']
    val = cfg.train_cfg.get('val_interval')
    lines.append(f'train_cfg = dict(max_iters={iters}' +
                 (f', val_interval={scaled(int(val))})' if val else ')'))
    ckpt = (cfg.get('default_hooks') or {}).get('checkpoint') or {}
    if ckpt.get('interval'):
        lines.append('default_hooks = dict(checkpoint=dict(interval='
                     f'{scaled(int(ckpt["interval"]))}))')
    return '\n'.join(lines) + '\n'


# ---------------------------------------------------- committed leaf configs
def leaf_config_path(study: Study, dataset: str, model: str,
                     loss: str) -> str:
    """configs/grid/<loss>/<stem>.py: the base setting of a loss."""
    name = stem(study, dataset, model, study.losses[loss].name)
    return osp.join(study.config_dir, loss, name + '.py')


def expected_leaf_configs(study: Study) -> Dict[str, str]:
    """{path: text} of the committed leaf configs: every data set x model x
    loss with the loss base's own setting (sweep variants are rendered at
    run time)."""
    if not study.config_dir:
        raise ValueError(f'{study.path}: the spec sets no `config_dir`')
    prefix = osp.relpath(BASE_ROOT, osp.join(study.config_dir, 'x')) + '/'
    note = (f'({LEAF_MARKER} from\n{rel_path(study.path)}; edit the spec, '
            'not this file.)')
    files = {}
    for (d, ds), (m, model), (lo, loss) in itertools.product(
            study.datasets.items(), study.models.items(),
            study.losses.items()):
        files[leaf_config_path(study, d, m, lo)] = leaf_config_text(
            study, ds, model, loss, Variant(), ds.base, prefix, note)
    return files


def write_leaf_configs(study: Study, check: bool = False) -> List[str]:
    """Write (or with ``check`` only compare) the committed leaf configs;
    files this generator wrote that the spec no longer names are removed.
    Returns the problems (check) or the changes made."""
    expected = expected_leaf_configs(study)
    spec = rel_path(study.path)
    changes = []
    for path, text in expected.items():
        old = open(path).read() if osp.exists(path) else None
        if old != text:
            changes.append(f'{"differs" if old else "missing"}: '
                           f'{rel_path(path)}')
            if not check:
                write_if_changed(path, text)
    for path in glob.glob(osp.join(study.config_dir, '*', '*.py')):
        if path in expected:
            continue
        with open(path) as f:
            text = f.read()
        # only files this spec wrote: a spec inheriting config_dir must not
        # remove another spec's leaf configs
        if LEAF_MARKER in text and f'\n# {spec};' in text:
            changes.append(f'stale: {rel_path(path)}')
            if not check:
                os.remove(path)
    return changes


# ------------------------------------------------------ configs of a study
def config_dir(study: Study) -> str:
    return osp.join(study.work_root, GRID_DIR_NAME, 'configs')


def data_base_path(study: Study, dataset: str) -> str:
    return osp.join(config_dir(study), f'data_{dataset}.py')


def data_base_text(study: Study, ds: DatasetSpec,
                   lists: Optional[Tuple[str, str]]) -> str:
    """The study's base for one data set: the spec's base with its data
    root, statistics file, the selection split as ``val_dataloader`` and the
    report split as ``test_dataloader``. ``lists``: the carve's (train,
    selection) ann files."""
    from mmengine.config import Config
    base = Config.fromfile(ds.base)
    lines = [f'# Data set {ds.key!r} of the study {study.name!r} (written '
             'by tools/grid.py): the spec\'s',
             '# base with the data root, statistics, selection split (val) '
             'and report split (test).',
             f'_base_ = [{ds.base!r}]',
             f'class_stats_file = {ds.class_stats_file!r}']
    if ds.data_root:
        lines.append(f'data_root = {ds.data_root!r}')
    kw = {s: ['data_root=data_root'] if ds.data_root else []
          for s in ('train', 'val', 'test')}

    def prefix(split: str) -> str:
        dataset = base[f'{split}_dataloader'].dataset
        return f'data_prefix={_literal(dataset.get("data_prefix", {}))}'

    if ds.selection == 'carve':
        kw['train'].append(f'ann_file={lists[0]!r}')
        kw['val'] += [prefix('train'), f'ann_file={lists[1]!r}']
    if ds.report == 'val':
        # copies without a test split (the shared CamVid, Cityscapes)
        kw['test'].append(prefix('val'))
    lines += [f'{s}_dataloader = dict(dataset=dict({", ".join(k)}))'
              for s, k in kw.items() if k]
    for name in ('val_evaluator', 'test_evaluator'):
        ev = base.get(name) or {}
        if not (isinstance(ev, dict)
                and ev.get('type') == 'LongTailIoUMetric'):
            continue
        args = []
        if not ev.get('frequency_groups') and not ev.get('class_counts'):
            args.append('class_stats_file=class_stats_file')
        if name == 'test_evaluator' and study.report_bootstrap:
            # the report split: per-image mIoU and an interval over images
            args.append('per_image=True, bootstrap_samples='
                        f'{study.report_bootstrap}, bootstrap_seed=0')
        if args:
            lines.append(f'{name} = dict({", ".join(args)})')
    return '\n'.join(lines) + '\n'


def render_cell_configs(study: Study, cells: List[Cell],
                        dry_run: bool = False) -> Dict[Cell, str]:
    """Write the data bases and the leaf config of every cell of ``cells``
    into ``<work_root>/_grid/configs/`` (only files whose text changes);
    returns cell -> config path. ``dry_run`` computes the paths only."""
    flag = ' --full-res' if study.variant == 'full_res' else ''
    note = (f'Rendered by {study.command()[len("python "):]} '
            f'({rel_path(study.path)}{flag}); the seed is set by the '
            'launcher.')
    for ds in {study.datasets[c.dataset] for c in cells}:
        if not dry_run:
            lists = (ensure_carve(ds, study.results_dir)
                     if ds.selection == 'carve' else None)
            write_if_changed(data_base_path(study, ds.key),
                             data_base_text(study, ds, lists))
    out = {}
    for c in cells:
        out[c] = osp.join(config_dir(study), config_stem(study, c) + '.py')
        if not dry_run:
            loss = study.losses[c.loss]
            write_if_changed(out[c], leaf_config_text(
                study, study.datasets[c.dataset], study.models[c.model],
                loss, loss.variant(c.variant),
                data_base_path(study, c.dataset), None, note))
    return out
