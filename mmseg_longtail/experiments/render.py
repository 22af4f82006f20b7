"""Config files of cells: the paper grid's committed leaf configs (each
loss's base setting) and those rendered for every cell of a study into
``<work_root>/_grid/configs/`` with its data bases."""
import functools
import glob
import itertools
import os
import os.path as osp
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from mmengine.config import Config

from mmseg_longtail.utils.run_files import write_if_changed

from .cells import Cell, config_stem
from .spec import (BASE_ROOT, DatasetSpec, LossSpec, ModelSpec, Study, Variant,
                   rel_path)
from .splits import ensure_carve

RUNTIME_BASE = osp.join(BASE_ROOT, 'default_runtime.py')
GRID_DIR_NAME = '_grid'
LEAF_MARKER = 'written by tools/misc/generate_grid_configs.py'
_AUX_COMMENT = {  # after '# The loss replaces the '
    'ce': "decode head's CE; the auxiliary head keeps CE.\n",
    'none': "decode head's CE; no auxiliary head, as in the\n# papers' "
    "networks (the loss alone trains the encoder).\n",
    'same': "CE of both heads (the auxiliary head's weight below).\n"}


def _literal(d: Dict[str, Any]) -> str:
    return 'dict(' + ', '.join(f'{k}={v!r}' for k, v in d.items()) + ')'


def _head(fields: List[str]) -> str:
    """A head with the loss base's loss and ``fields``, replacing CE's."""
    pad = '\n' + ' ' * 12
    body = ''.join(f'{pad}{f},' for f in ['_base_.loss_decode'] + fields)
    return ('dict(\n        num_classes=_base_.num_classes,\n'
            f'        loss_decode=dict({body}{pad}_delete_=True))')


def leaf_config_text(study: Study, ds: DatasetSpec, model: ModelSpec,
                     loss: LossSpec, variant: Variant, data_base: str,
                     base_prefix: Optional[str], note: str = '') -> str:
    """A leaf config of model, data set, loss, runtime and schedule bases
    (configs/_base_/ ones relative to ``base_prefix`` if given); data set
    values reach the model as ``_base_.<name>``, which only a leaf reads."""
    bases = [model.base, data_base, loss.base, RUNTIME_BASE,
             study.schedule_base]
    if base_prefix is not None:
        bases = [base_prefix + osp.relpath(b, BASE_ROOT)
                 if b.startswith(BASE_ROOT + os.sep) else b for b in bases]
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
            '_base_ = [\n' + ''.join(f"    '{b}',\n" for b in bases) +
            ']\n# The loss replaces the ' + _AUX_COMMENT[model.aux] +
            'model = dict(\n' + preproc +
            f'    decode_head={_head(fields)},\n'
            f'    auxiliary_head={aux},\n)\n' +
            schedule_text(study.schedule_base, study.schedule_iters))


@functools.lru_cache(maxsize=None)
def schedule_text(base: str, iters: Optional[int]) -> str:
    """Overrides running ``base`` for ``iters`` (None: none) iterations."""
    if iters is None:
        return ''
    cfg = Config.fromfile(base)
    old = int(cfg.train_cfg.max_iters)

    def scaled(x: int) -> int:
        return x if x == 0 else max(1, round(x * iters / old))

    schedulers = cfg.get('param_scheduler') or []
    lines = [f'# the study\'s schedule: {iters} iterations instead of the '
             f'base\'s {old}, milestones and intervals scaled']
    items = [{
        k: scaled(v) if k in ('begin', 'end') and isinstance(v, int) else v
        for k, v in sched.items()
    } for sched in ([schedulers] if isinstance(schedulers, dict) else
                    schedulers)]
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


def leaf_config_path(study: Study, dataset: str, model: str,
                     loss: str) -> str:
    """configs/grid/<loss>/<stem>.py: the base setting of a loss."""
    name = config_stem(study, Cell(dataset, model, loss, '', 0))
    return osp.join(study.config_dir, loss, name + '.py')


def expected_leaf_configs(study: Study) -> Dict[str, str]:
    """{path: text} of the committed leaf configs of a study."""
    if not study.config_dir:
        raise ValueError(f'{study.path}: the spec sets no `config_dir`')
    prefix = osp.relpath(BASE_ROOT, osp.join(study.config_dir, 'x')) + '/'
    note = (f'({LEAF_MARKER} from\n{rel_path(study.path)}; edit the spec, '
            'not this file.)')
    return {
        leaf_config_path(study, d, m, lo): leaf_config_text(
            study, ds, model, loss, Variant(), ds.base, prefix, note)
        for (d, ds), (m, model), (lo, loss) in itertools.product(
            study.datasets.items(), study.models.items(),
            study.losses.items())
    }


def write_leaf_configs(study: Study, check: bool = False) -> List[str]:
    """Write (``check``: only compare) the committed leaf configs, removing
    those this spec wrote that it no longer names; returns the changes."""
    expected = expected_leaf_configs(study)
    mine = f'\n# {rel_path(study.path)};'
    changes = []
    for path in dict.fromkeys([*expected, *glob.glob(
            osp.join(study.config_dir, '*', '*.py'))]):
        old = Path(path).read_text() if osp.exists(path) else ''
        if path in expected and old != expected[path]:
            changes.append(f'{"differs" if old else "missing"}: '
                           f'{rel_path(path)}')
            if not check:
                write_if_changed(path, expected[path])
        # a spec inheriting config_dir must not remove another's configs
        elif path not in expected and LEAF_MARKER in old and mine in old:
            changes.append(f'stale: {rel_path(path)}')
            if not check:
                os.remove(path)
    return changes


def data_base_path(study: Study, dataset: str) -> str:
    return osp.join(study.work_root, GRID_DIR_NAME, 'configs',
                    f'data_{dataset}.py')


def data_base_text(study: Study, ds: DatasetSpec,
                   lists: Optional[Tuple[str, str]]) -> str:
    """A data base with the study's data root, statistics and splits;
    ``lists``: the carve's (train, selection) ann files."""
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
    prefix = {s: 'data_prefix=' + _literal(
        base[f'{s}_dataloader'].dataset.get('data_prefix', {}))
        for s in ('train', 'val')}
    if ds.selection == 'carve':
        kw['train'].append(f'ann_file={lists[0]!r}')
        kw['val'] += [prefix['train'], f'ann_file={lists[1]!r}']
    if ds.report == 'val':
        # copies without a test split (the shared CamVid, Cityscapes)
        kw['test'].append(prefix['val'])
    lines += [f'{s}_dataloader = dict(dataset=dict({", ".join(k)}))'
              for s, k in kw.items() if k]
    for name in ('val_evaluator', 'test_evaluator'):
        ev = base.get(name) or {}
        if not isinstance(ev, dict) or ev.get('type') != 'LongTailIoUMetric':
            continue
        args = ([] if ev.get('frequency_groups') or ev.get('class_counts')
                else ['class_stats_file=class_stats_file'])
        if name == 'test_evaluator' and study.report_bootstrap:
            args.append('per_image=True, bootstrap_samples='
                        f'{study.report_bootstrap}, bootstrap_seed=0')
        if args:
            lines.append(f'{name} = dict({", ".join(args)})')
    return '\n'.join(lines) + '\n'


def render_cell_configs(study: Study, cells: List[Cell],
                        dry_run: bool = False) -> Dict[Cell, str]:
    """Write the data bases and the leaf config of every cell (only files
    whose text changes); returns cell -> config path."""
    spec = rel_path(study.path) + (
        ' --full-res' if study.variant == 'full_res' else '')
    note = (f'Rendered by tools/grid.py --study {spec} ({spec}); the seed is '
            'set by the launcher.')
    for ds in set() if dry_run else {study.datasets[c.dataset] for c in cells}:
        lists = (ensure_carve(ds, study.results_dir)
                 if ds.selection == 'carve' else None)
        write_if_changed(data_base_path(study, ds.key),
                         data_base_text(study, ds, lists))
    out = {}
    for c in cells:
        base = data_base_path(study, c.dataset)
        out[c] = osp.join(osp.dirname(base), config_stem(study, c) + '.py')
        if not dry_run:
            loss = study.losses[c.loss]
            write_if_changed(out[c], leaf_config_text(
                study, study.datasets[c.dataset], study.models[c.model],
                loss, loss.variant(c.variant), base, None, note))
    return out
