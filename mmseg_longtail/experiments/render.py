"""Config files of cells: the leaf configs of a study and their data bases.

One renderer serves both places configs live: the committed leaf configs of
the paper grid (``configs/grid/<loss>/*.py``, the base setting of each loss,
relative ``_base_`` paths; :func:`write_leaf_configs`) and the configs a
launcher renders for every cell of a study into
``<work_root>/_grid/configs/`` (absolute paths, the study's data root,
statistics and splits; :func:`render_cell_configs`).
"""
import functools
import glob
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

from .cells import Cell, config_stem, stem
from .records import write_if_changed
from .spec import (BASE_ROOT, DatasetSpec, LossSpec, ModelSpec, Study,
                   Variant, rel_path)
from .splits import ensure_carve

RUNTIME_BASE = osp.join(BASE_ROOT, 'default_runtime.py')
GRID_DIR_NAME = '_grid'
LEAF_MARKER = 'written by tools/misc/generate_grid_configs.py'


def leaf_config_text(study: Study, ds: DatasetSpec, model: ModelSpec,
                     loss: LossSpec, variant: Variant, data_base: str,
                     base_prefix: Optional[str], note: str = '') -> str:
    """Text of a leaf config: ``_base_`` composition of model, data set,
    loss, runtime and schedule. With ``base_prefix`` (e.g.
    ``'../../_base_/'``) base paths under configs/_base_/ are written
    relative to it, else absolutely. The data set's ``num_classes``,
    ``crop_size`` and ``class_stats_file`` reach the model through
    mmengine's ``_base_.<name>`` references (a base cannot read a sibling
    base's variables; the leaf can)."""

    def base(path: str) -> str:
        if base_prefix is not None and path.startswith(BASE_ROOT + os.sep):
            return base_prefix + osp.relpath(path, BASE_ROOT)
        return path

    bases = [model.base, data_base, loss.base, RUNTIME_BASE,
             study.schedule_base]
    base_lines = ''.join(f"    '{base(b)}',\n" for b in bases)
    fields = ['class_counts=_base_.class_stats_file'] if loss.counted else []
    fields += [f'{k}={v!r}' for k, v in variant.options]
    if model.size_divisor > 1:
        d = model.size_divisor
        preproc = (f'    # pad crops up to multiples of {d}, as the model '
                   'needs\n'
                   '    data_preprocessor=dict(\n'
                   f'        size=tuple(-(-s // {d}) * {d} for s in '
                   '_base_.crop_size)),\n')
    else:
        preproc = '    data_preprocessor=dict(size=_base_.crop_size),\n'
    header = (f'# {loss.label(variant)} loss, {model.title}, {ds.title}: '
              f'one cell of {study.title}\n')
    header += ''.join(f'# {line}\n' for line in note.splitlines())
    return (header + '_base_ = [\n' + base_lines + ']\n' +
            _AUX_COMMENT[model.aux] + 'model = dict(\n' + preproc +
            '    decode_head=dict(\n'
            '        num_classes=_base_.num_classes,\n'
            f'{_loss_dict("        ", fields)}),\n' +
            _aux_head(model, fields) + ')\n' +
            schedule_text(study.schedule_base, study.schedule_iters))


@functools.lru_cache(maxsize=None)
def schedule_text(base: str, iters: Optional[int]) -> str:
    """Overrides that run the schedule ``base`` for ``iters`` iterations:
    its scheduler milestones, validation and checkpoint intervals scaled by
    ``iters / max_iters`` (a study's ``schedule.iters``); empty for None.
    The same for every cell of a study, so computed once."""
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
    items = []
    for sched in schedulers:
        sched = {k: (scaled(v) if k in ('begin', 'end') and isinstance(
            v, int) else v) for k, v in sched.items()}
        items.append('dict(' + ', '.join(f'{k}={v!r}' for k, v in
                                         sched.items()) + ')')
    if items:
        lines.append('param_scheduler = [\n' + ''.join(
            f'    {x},\n' for x in items) + ']')
    val = cfg.train_cfg.get('val_interval')
    lines.append(f'train_cfg = dict(max_iters={iters}' + (
        f', val_interval={scaled(int(val))})' if val else ')'))
    ckpt = (cfg.get('default_hooks') or {}).get('checkpoint') or {}
    if ckpt.get('interval'):
        lines.append('default_hooks = dict(checkpoint=dict(interval='
                     f'{scaled(int(ckpt["interval"]))}))')
    return '\n'.join(lines) + '\n'


_AUX_COMMENT = {
    'ce': '# The loss replaces the decode head\'s CE; the auxiliary head '
    'keeps CE.\n',
    'none': '# The loss replaces the decode head\'s CE; no auxiliary head, as '
    'in the\n# papers\' networks (the loss alone trains the encoder).\n',
    'same': '# The loss replaces the CE of both heads (the auxiliary head\'s '
    'weight below).\n',
}


def _loss_dict(indent: str, fields: List[str],
               weight: Optional[float] = None) -> str:
    """``loss_decode=dict(<the loss base's dict>, <fields>)``; ``_delete_``
    drops the model base's CE keys instead of merging into them."""
    if weight is not None:
        fields = fields + [f'loss_weight={weight!r}']
    pad = '\n' + indent + '    '
    body = ''.join(f'{pad}{f},' for f in ['_base_.loss_decode'] + fields)
    return f'{indent}loss_decode=dict({body}{pad}_delete_=True)'


def _aux_head(model: ModelSpec, fields: List[str]) -> str:
    if model.aux == 'none':
        return '    auxiliary_head=None,\n'
    if model.aux == 'ce':
        return '    auxiliary_head=dict(num_classes=_base_.num_classes),\n'
    return ('    auxiliary_head=dict(\n'
            '        num_classes=_base_.num_classes,\n'
            f'{_loss_dict("        ", fields, model.aux_weight)}),\n')


# ---------------------------------------------------- committed leaf configs
def leaf_config_path(study: Study, dataset: str, model: str,
                     loss: str) -> str:
    """configs/grid/<loss>/<stem>.py: the base setting of a loss."""
    name = stem(study, dataset, model, study.losses[loss].name)
    return osp.join(study.config_dir, loss, name + '.py')


def expected_leaf_configs(study: Study) -> Dict[str, str]:
    """{path: text} of the committed leaf configs: every data set x model x
    loss of the study with the loss base's own setting (sweep variants are
    rendered at run time)."""
    if not study.config_dir:
        raise ValueError(f'{study.path}: the spec sets no `config_dir`')
    prefix = osp.relpath(BASE_ROOT, osp.join(study.config_dir, 'x')) + '/'
    spec = rel_path(study.path)
    files = {}
    for d, ds in study.datasets.items():
        for m, model in study.models.items():
            for lo, loss in study.losses.items():
                path = leaf_config_path(study, d, m, lo)
                files[path] = leaf_config_text(
                    study, ds, model, loss, Variant(), ds.base, prefix,
                    note=f'({LEAF_MARKER} from\n{spec}; edit the spec, not '
                    'this file.)')
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
        if old == text:
            continue
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
        if LEAF_MARKER not in text or f'\n# {spec};' not in text:
            continue
        changes.append(f'stale: {rel_path(path)}')
        if not check:
            os.remove(path)
    return changes


# ------------------------------------------------------ configs of a study
def config_dir(study: Study) -> str:
    return osp.join(study.work_root, GRID_DIR_NAME, 'configs')


def data_base_path(study: Study, dataset: str) -> str:
    return osp.join(config_dir(study), f'data_{dataset}.py')


def _prefix_literal(prefix) -> str:
    return 'dict(' + ', '.join(f'{k}={v!r}' for k, v in dict(
        prefix).items()) + ')'


def data_base_text(study: Study, ds: DatasetSpec,
                   lists: Optional[Tuple[str, str]]) -> str:
    """The study's base for one data set: the spec's base with its data
    root, statistics file, the selection split as ``val_dataloader`` and the
    report split as ``test_dataloader``. ``lists``: the carve's (train,
    selection) ann files."""
    from mmengine.config import Config
    base = Config.fromfile(ds.base)
    root = ds.data_root
    lines = [f'# Data set {ds.key!r} of the study {study.name!r} (written '
             'by tools/grid.py): the spec\'s',
             '# base with the data root, statistics, selection split (val) '
             'and report split (test).',
             f'_base_ = [{ds.base!r}]',
             f'class_stats_file = {ds.class_stats_file!r}']
    root_kw = ''
    if root:
        lines.append(f'data_root = {root!r}')
        root_kw = 'data_root=data_root, '
    train_kw, val_kw, test_kw = root_kw, root_kw, root_kw
    if ds.selection == 'carve':
        train_list, sel_list = lists
        prefix = base.train_dataloader.dataset.get('data_prefix', {})
        train_kw += f'ann_file={train_list!r}, '
        val_kw += (f'data_prefix={_prefix_literal(prefix)}, '
                   f'ann_file={sel_list!r}, ')
    if ds.report == 'val':
        # copies without a test split (the shared CamVid, Cityscapes):
        # the report is on the val split
        prefix = base.val_dataloader.dataset.get('data_prefix', {})
        test_kw += f'data_prefix={_prefix_literal(prefix)}, '
    for name, kw in (('train', train_kw), ('val', val_kw),
                     ('test', test_kw)):
        if kw:
            lines.append(f'{name}_dataloader = dict(dataset=dict('
                         f'{kw.rstrip(", ")}))')
    for name in ('val_evaluator', 'test_evaluator'):
        ev = base.get(name) or {}
        if not (isinstance(ev, dict)
                and ev.get('type') == 'LongTailIoUMetric'):
            continue
        kw = []
        if not ev.get('frequency_groups') and not ev.get('class_counts'):
            kw.append('class_stats_file=class_stats_file')
        if name == 'test_evaluator' and study.report_bootstrap:
            # the report split: per-image mIoU and an interval over images
            kw.append('per_image=True, bootstrap_samples='
                      f'{study.report_bootstrap}, bootstrap_seed=0')
        if kw:
            lines.append(f'{name} = dict({", ".join(kw)})')
    return '\n'.join(lines) + '\n'


def render_cell_configs(study: Study, cells: List[Cell],
                        dry_run: bool = False) -> Dict[Cell, str]:
    """Write the data bases and the leaf config of every cell of ``cells``
    into ``<work_root>/_grid/configs/`` (only files whose text changes);
    returns cell -> config path. ``dry_run`` computes the paths only."""
    spec = rel_path(study.path)
    flag = ' --full-res' if study.variant == 'full_res' else ''
    data_bases = {}
    for d in {c.dataset for c in cells}:
        ds = study.datasets[d]
        path = data_base_path(study, d)
        if not dry_run:
            lists = (ensure_carve(ds, study.results_dir)
                     if ds.selection == 'carve' else None)
            write_if_changed(path, data_base_text(study, ds, lists))
        data_bases[d] = path
    out = {}
    for c in cells:
        path = osp.join(config_dir(study), config_stem(study, c) + '.py')
        if not dry_run:
            ds = study.datasets[c.dataset]
            loss = study.losses[c.loss]
            write_if_changed(path, leaf_config_text(
                study, ds, study.models[c.model], loss,
                loss.variant(c.variant), data_bases[c.dataset], None,
                note=f'Rendered by {study.command()[len("python "):]}'
                f' ({spec}{flag}); the seed is set by the launcher.'))
        out[c] = path
    return out
