"""The comparison grid of the PAT paper: losses x models x data sets.

One table is the single source of truth for
``tools/misc/generate_grid_configs.py`` (writes ``configs/grid/<loss>/*.py``),
``tools/grid.py`` (selects and runs cells) and ``tools/collect_results.py``
(tables). A cell is one training run: one data set base + one model base +
one loss base + the 30k schedule.

Config names follow mmseg's ``{algorithm}_{model}_{gpus}xb{batch}-{schedule}_
{dataset}-{crop}`` with the loss as the algorithm, e.g.
``configs/grid/pat/pat_deeplabv3plus_r50-d8_1xb4-30k_camvid-360x480.py``.
"""
import fnmatch
import functools
import os
import os.path as osp
from typing import (Dict, List, NamedTuple, Optional, Sequence,
                    Tuple)

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_ROOT = osp.join(REPO_ROOT, 'configs')
GRID_DIR = osp.join(CONFIG_ROOT, 'grid')
BASE_ROOT = osp.join(CONFIG_ROOT, '_base_')
# prefix of _base_ paths in configs rendered outside configs/ (studies)
BASE_PREFIX = BASE_ROOT + os.sep


class Dataset(NamedTuple):
    base: str  # under configs/_base_/
    name: str  # file-name piece (mmseg style); the crop size is appended
    title: str  # table heading


class Model(NamedTuple):
    base: str
    name: str
    title: str
    # Training batches are padded to the crop size (mmseg's
    # data_preprocessor.size), rounded up to a multiple of this (mmseg's
    # UNet needs sides divisible by 16).
    size_divisor: int = 1


class Loss(NamedTuple):
    base: str
    name: str
    title: str
    # Needs the training-set class counts: the cell passes the data set's
    # statistics file (its ``class_stats_file``) as ``class_counts``.
    counted: bool = False
    # Fields set on top of the base's ``loss_decode`` (study variants, e.g.
    # LDAM with another ``s``), as (name, value) pairs.
    options: Tuple[Tuple[str, object], ...] = ()


DATASETS: Dict[str, Dataset] = {
    'pet': Dataset('datasets/oxford_pet.py', 'oxford-pet', 'Oxford-IIIT Pet'),
    'cityscapes': Dataset('datasets/cityscapes_256x512.py', 'cityscapes',
                          'Cityscapes'),
    'nyuv2': Dataset('datasets/nyu_v2_40.py', 'nyu-v2-40', 'NYUv2'),
    'camvid': Dataset('datasets/camvid.py', 'camvid', 'CamVid'),
}
# The PAT paper's three data sets, and CamVid: the grid on real data that
# ships with this repository's test setup.

MODELS: Dict[str, Model] = {
    'unet': Model('models/unet.py', 'unet-s5-d16_fcn', 'UNet',
                  size_divisor=16),
    'attunet': Model('models/attunet.py', 'attunet_unet-s5-d16', 'AttUNet'),
    'unetpp': Model('models/unetpp.py', 'unetpp_unet-s5-d16', 'UNet++'),
    'deeplabv3': Model('models/deeplabv3.py', 'deeplabv3_r50-d8', 'DLV3'),
    'deeplabv3plus': Model('models/deeplabv3plus.py', 'deeplabv3plus_r50-d8',
                           'DLV3+'),
}

LOSSES: Dict[str, Loss] = {
    'ce': Loss('losses/ce.py', 'ce', 'CE'),
    'focal': Loss('losses/focal.py', 'focal', 'Focal'),
    'cb': Loss('losses/cb.py', 'cb', 'CB', counted=True),
    'cbfocal': Loss('losses/cbfocal.py', 'cbfocal', 'CBFocal', counted=True),
    'bms': Loss('losses/bms.py', 'bms', 'BMS', counted=True),
    'ldam': Loss('losses/ldam.py', 'ldam', 'LDAM', counted=True),
    'blv': Loss('losses/blv.py', 'blv', 'BLV', counted=True),
    'pat': Loss('losses/pat.py', 'pat', 'PAT'),
}

SCHEDULE_BASE = 'schedules/schedule_30k.py'
SCHEDULE_NAME = '30k'
RUNTIME_BASE = 'default_runtime.py'
GPUS = 1  # the "1x" of the name: the batch size is per process


class Cell(NamedTuple):
    dataset: str
    model: str
    loss: str


def all_cells() -> List[Cell]:
    """Every cell, ordered data set, model, loss (the table order)."""
    return [
        Cell(d, m, lo) for d in DATASETS for m in MODELS for lo in LOSSES
    ]


def base_path(base: str) -> str:
    """A base config's file: ``base`` if absolute, else relative to
    configs/_base_/."""
    return base if osp.isabs(base) else osp.join(BASE_ROOT, base)


def check_patterns(axes, where: str = '') -> None:
    """Raise a ValueError for a glob pattern that matches no key of its
    axis (``axes``: (name, patterns, keys) triples), so a typo such as
    ``--losses pta`` does not silently select nothing."""
    for axis, patterns, keys in axes:
        for p in patterns or ():
            if not any(fnmatch.fnmatchcase(k, p) for k in keys):
                raise ValueError(f'--{axis}: {p!r} matches none of '
                                 f'{where}{list(keys)}')


def _match(key: str, patterns: Optional[Sequence[str]]) -> bool:
    if not patterns:
        return True
    return any(fnmatch.fnmatchcase(key, p) for p in patterns)


def split_patterns(values: Optional[Sequence[str]]) -> List[str]:
    """``['ce,pat', 'cb*']`` -> ``['ce', 'pat', 'cb*']``."""
    out: List[str] = []
    for value in values or ():
        out += [v.strip() for v in value.split(',') if v.strip()]
    return out


def select_cells(datasets: Optional[Sequence[str]] = None,
                 models: Optional[Sequence[str]] = None,
                 losses: Optional[Sequence[str]] = None) -> List[Cell]:
    """Cells whose keys match the glob patterns (none given: everything);
    a pattern that matches no key of its axis is an error."""
    check_patterns((('datasets', datasets, DATASETS),
                    ('models', models, MODELS), ('losses', losses, LOSSES)))
    return [
        c for c in all_cells() if _match(c.dataset, datasets)
        and _match(c.model, models) and _match(c.loss, losses)
    ]


def config_name(cell: Cell, batch_size: int, crop_size: Sequence[int],
                dataset_name: Optional[str] = None,
                model: Optional[Model] = None,
                schedule_name: str = SCHEDULE_NAME, suffix: str = '',
                loss: Optional[Loss] = None) -> str:
    """mmseg-style file stem of a cell, e.g.
    ``pat_unet-s5-d16_fcn_1xb4-30k_camvid-360x480``.

    ``model``, ``schedule_name`` and ``loss`` replace the grid's (studies use
    their own light bases, schedules and loss variants); ``suffix`` is
    appended, e.g. ``_seed1``.
    """
    h, w = crop_size
    dataset_name = dataset_name or DATASETS[cell.dataset].name
    model = model or MODELS[cell.model]
    loss = loss or LOSSES[cell.loss]
    return (f'{loss.name}_{model.name}_'
            f'{GPUS}xb{batch_size}-{schedule_name}_{dataset_name}-{h}x{w}'
            f'{suffix}')


@functools.lru_cache(maxsize=None)
def dataset_facts(dataset_base: str) -> Tuple[int, Tuple[int, int]]:
    """(train batch size, crop size) read from a data set base config.

    ``dataset_base`` is relative to configs/_base_/ or an absolute path.
    """
    from mmengine.config import Config
    path = base_path(dataset_base)
    cfg = Config.fromfile(path)
    for key in ('num_classes', 'crop_size', 'class_stats_file'):
        if key not in cfg:
            raise KeyError(f'{path} defines no `{key}`, which grid cells '
                           'need (see docs/grid.md)')
    return int(cfg.train_dataloader.batch_size), tuple(cfg.crop_size)


def config_path(cell: Cell) -> str:
    """Path of a cell's config under configs/grid/<loss>/."""
    batch, crop = dataset_facts(DATASETS[cell.dataset].base)
    return osp.join(GRID_DIR, cell.loss,
                    config_name(cell, batch, crop) + '.py')


def render_config(cell: Cell, dataset_base: str, base_prefix: str,
                  note: str = '', model: Optional[Model] = None,
                  schedule_base: str = SCHEDULE_BASE,
                  dataset_title: Optional[str] = None,
                  extra: str = '', loss: Optional[Loss] = None) -> str:
    """Text of a cell's config.

    ``base_prefix`` is prepended to the ``_base_`` paths (relative to the
    ``configs/_base_`` folder): ``'../../_base_/'`` for configs/grid/<loss>/,
    an absolute folder for configs rendered elsewhere. An absolute
    ``dataset_base`` (or model / schedule base) is used as it is. The data
    set's ``num_classes``, ``crop_size`` and ``class_stats_file`` reach the
    model through mmengine's ``_base_.<name>`` references (a base cannot read
    a sibling base's variables; the leaf can). ``model``, ``schedule_base``
    ``dataset_title`` and ``loss`` replace the grid's (studies); ``extra`` is
    appended as it is (e.g. ``randomness = dict(seed=1)``).
    """
    loss = loss or LOSSES[cell.loss]
    model = model or MODELS[cell.model]
    dataset_title = dataset_title or DATASETS[cell.dataset].title
    bases = [model.base, dataset_base, loss.base, RUNTIME_BASE, schedule_base]
    base_lines = ''.join(
        f"    '{b if osp.isabs(b) else base_prefix + b}',\n" for b in bases)
    counts = ('\n            class_counts=_base_.class_stats_file,'
              if loss.counted else '')
    counts += ''.join(f'\n            {k}={v!r},' for k, v in loss.options)
    if model.size_divisor > 1:
        d = model.size_divisor
        preproc = (f'    # pad crops up to multiples of {d}, as the model '
                   'needs\n'
                   '    data_preprocessor=dict(\n'
                   f'        size=tuple(-(-s // {d}) * {d} for s in '
                   '_base_.crop_size)),\n')
    else:
        preproc = '    data_preprocessor=dict(size=_base_.crop_size),\n'
    header = (f'# {loss.title} loss, {model.title}, {dataset_title}: one cell '
              'of the PAT paper grid\n'
              '# (tools/misc/generate_grid_configs.py writes these files; '
              'edit it, not them).\n')
    if note:
        header += f'# {note}\n'
    return (
        header + '_base_ = [\n' + base_lines + ']\n'
        '# The loss replaces the decode head\'s CE; the auxiliary head keeps '
        'CE.\n'
        'model = dict(\n' + preproc +
        '    decode_head=dict(\n'
        '        num_classes=_base_.num_classes,\n'
        '        loss_decode=dict(\n'
        f'            _base_.loss_decode,{counts}\n'
        '            _delete_=True)),\n'
        '    auxiliary_head=dict(num_classes=_base_.num_classes))\n' + extra)


# ------------------------------------------------------------------ studies
class Study(NamedTuple):
    """A study spec (e.g. configs/camvid_study/study_cpu.py) resolved.

    Paths are absolute: the spec's relative paths are relative to the
    repository root; ``data_root`` / ``work_root`` given on the command line
    are relative to the current directory (the caller resolves them).
    """
    path: str  # the spec file
    name: str
    title: str
    variant: str  # 'default' or 'full_res'
    dataset: str  # key (cells, tables)
    dataset_name: str  # file-name piece
    dataset_title: str
    data_base: str
    data_root: str
    class_stats_file: str
    work_root: str
    schedule_base: str
    schedule_name: str
    models: Dict[str, Model]
    losses: Tuple[str, ...]
    # loss key -> Loss: the grid's losses plus the spec's ``extra_losses``
    loss_table: Dict[str, Loss]
    seeds: Tuple[int, ...]  # every loss
    extra_seeds: Dict[str, Tuple[int, ...]]  # loss -> further seeds
    priority: Tuple[str, ...]  # losses run first, in this order
    page: str

    def seeds_of(self, loss: str) -> Tuple[int, ...]:
        extra = [s for s in self.extra_seeds.get(loss, ()) if s not in
                 self.seeds]
        return tuple(self.seeds) + tuple(extra)

    def command(self, tool: str = 'tools/grid.py') -> str:
        """The command that runs (or pages) this study, repo-relative."""
        spec = osp.relpath(self.path, REPO_ROOT)
        flag = ' --full-res' if self.variant == 'full_res' else ''
        return f'python {tool} --study {spec}{flag}'


def _merge(base: dict, override: dict) -> dict:
    """``base`` updated by ``override``, dicts merged recursively."""
    out = dict(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _repo_path(path: Optional[str]) -> Optional[str]:
    if path is None:
        return None
    path = osp.expanduser(path)
    return osp.normpath(path if osp.isabs(path) else osp.join(REPO_ROOT,
                                                              path))


def _schedule_name(schedule_base: str) -> str:
    """mmseg's schedule piece of a name: ``30k``, ``80k``; ``500i`` for
    schedules that are not whole thousands."""
    from mmengine.config import Config
    iters = int(Config.fromfile(schedule_base).train_cfg.max_iters)
    return f'{iters // 1000}k' if iters % 1000 == 0 else f'{iters}i'


def load_study(path: str, full_res: bool = False,
               data_root: Optional[str] = None,
               work_root: Optional[str] = None) -> Study:
    """Read a study spec (an mmengine config file of plain values).

    Keys: ``name``, ``title``, ``dataset`` (dict: ``key``, ``base``,
    ``name``, ``title``), ``data_root``, ``class_stats_file`` (None:
    ``<work_root>/class_stats.json``), ``work_root``, ``schedule`` (dict:
    ``base``, optional ``name``), ``models`` (key -> a grid model key, or a
    dict with ``base``, ``name``, ``title``, optional ``size_divisor``),
    ``losses`` (grid loss keys or keys of ``extra_losses``: key -> dict
    with ``base`` (a loss base config, repo-relative, or a grid loss key),
    ``name``, ``title``, ``counted`` and optional ``options``, fields set on
    the base's ``loss_decode``), ``seeds``, ``extra_seeds`` (loss -> seeds),
    ``priority`` (losses run first), ``page`` (the results page) and
    ``full_res`` (overrides merged in with ``full_res=True``). Wrong values
    fail here, naming the key.
    """
    from mmengine.config import Config
    spec_path = osp.abspath(path)
    if not osp.isfile(spec_path):
        raise FileNotFoundError(f'study spec {path!r} not found')
    raw = Config.fromfile(spec_path).to_dict()
    variant = 'default'
    if full_res:
        if not raw.get('full_res'):
            raise KeyError(f'{path}: no `full_res` overrides for --full-res')
        raw = _merge(raw, raw['full_res'])
        variant = 'full_res'

    def need(key):
        if key not in raw:
            raise KeyError(f'{path}: the study spec defines no `{key}`')
        return raw[key]

    ds = need('dataset')
    for key in ('key', 'base', 'name', 'title'):
        if key not in ds:
            raise KeyError(f'{path}: `dataset` needs `{key}`')
    models = {}
    for key, m in need('models').items():
        if isinstance(m, str):
            if m not in MODELS:
                raise KeyError(f'{path}: models.{key} = {m!r} is not a grid '
                               f'model ({list(MODELS)})')
            models[key] = MODELS[m]
            continue
        missing = [f for f in ('base', 'name', 'title') if f not in m]
        if missing:
            raise KeyError(f'{path}: models.{key} needs {missing}')
        models[key] = Model(_repo_path(m['base']), m['name'], m['title'],
                            int(m.get('size_divisor', 1)))
    loss_table = dict(LOSSES)
    for key, lo in (raw.get('extra_losses') or {}).items():
        if key in LOSSES:
            raise KeyError(f'{path}: extra_losses.{key} would replace the '
                           'grid loss of that name; pick another key')
        missing = [f for f in ('base', 'name', 'title', 'counted')
                   if f not in lo]
        if missing:
            raise KeyError(f'{path}: extra_losses.{key} needs {missing}')
        unknown = set(lo) - {'base', 'name', 'title', 'counted', 'options'}
        if unknown:
            raise KeyError(f'{path}: extra_losses.{key} has unknown fields '
                           f'{sorted(unknown)}')
        base = (LOSSES[lo['base']].base if lo['base'] in LOSSES else
                _repo_path(lo['base']))
        options = tuple(sorted((lo.get('options') or {}).items()))
        loss_table[key] = Loss(base, lo['name'], lo['title'],
                               bool(lo['counted']), options)
    losses = tuple(need('losses'))
    bad = [lo for lo in losses if lo not in loss_table]
    if bad:
        raise KeyError(f'{path}: losses {bad} are neither grid losses '
                       f'({list(LOSSES)}) nor extra_losses')
    seeds = tuple(int(s) for s in need('seeds'))
    extra = {lo: tuple(int(s) for s in v)
             for lo, v in (raw.get('extra_seeds') or {}).items()}
    priority = tuple(raw.get('priority') or ())
    for field, keys in (('extra_seeds', extra), ('priority', priority)):
        bad = [lo for lo in keys if lo not in losses]
        if bad:
            raise KeyError(f'{path}: {field} names losses {bad} that the '
                           'study does not run')
    if not seeds or not models or not losses:
        raise ValueError(f'{path}: seeds, models and losses must not be '
                         'empty')
    sched = need('schedule')
    schedule_base = _repo_path(sched['base'])
    work = (osp.abspath(work_root) if work_root else _repo_path(
        need('work_root')))
    stats = raw.get('class_stats_file')
    stats = _repo_path(stats) if stats else osp.join(work,
                                                      'class_stats.json')
    files = [('dataset.base', _repo_path(ds['base'])),
             ('schedule.base', schedule_base)]
    files += [(f'models.{k}.base', base_path(m.base))
              for k, m in models.items()]
    files += [(f'extra_losses.{k}.base', base_path(lo.base))
              for k, lo in loss_table.items() if k not in LOSSES]
    for label, file in files:
        if not osp.isfile(file):
            raise FileNotFoundError(f'{path}: {label} {file} not found')
    return Study(
        path=spec_path, name=raw.get('name', osp.splitext(
            osp.basename(spec_path))[0]),
        title=raw.get('title', ds['title']), variant=variant,
        dataset=ds['key'], dataset_name=ds['name'],
        dataset_title=ds['title'], data_base=_repo_path(ds['base']),
        data_root=(osp.abspath(data_root) if data_root else _repo_path(
            need('data_root'))),
        class_stats_file=stats, work_root=work,
        schedule_base=schedule_base,
        schedule_name=sched.get('name') or _schedule_name(schedule_base),
        models=models, losses=losses, loss_table=loss_table, seeds=seeds,
        extra_seeds=extra,
        priority=priority, page=_repo_path(raw.get('page')))


class StudyCell(NamedTuple):
    model: str
    loss: str
    seed: int


def study_cells(study: Study, models: Optional[Sequence[str]] = None,
                losses: Optional[Sequence[str]] = None,
                seeds: Optional[Sequence[int]] = None) -> List[StudyCell]:
    """The study's runs in the order they should run: the first seed of
    every loss before any further seed; within a seed the ``priority``
    losses first, then the rest in the spec's order; every model of a loss
    before the next loss. Glob patterns select models / losses as in
    :func:`select_cells`; ``seeds`` keeps only those seeds."""
    check_patterns((('models', models, study.models),
                    ('losses', losses, study.losses)), "the study's ")
    rank = {lo: i for i, lo in enumerate(
        list(study.priority) + [x for x in study.losses
                                if x not in study.priority])}
    model_rank = {m: i for i, m in enumerate(study.models)}
    cells = []
    for loss in study.losses:
        for pos, seed in enumerate(study.seeds_of(loss)):
            for model in study.models:
                cells.append((pos, rank[loss], model_rank[model],
                              StudyCell(model, loss, seed)))
    cells.sort(key=lambda c: c[:3])
    return [c for *_, c in cells
            if _match(c.model, models) and _match(c.loss, losses)
            and (seeds is None or c.seed in seeds)]


def study_config_name(study: Study, cell: StudyCell) -> str:
    """File stem of a study run's config and work dir, e.g.
    ``pat_unet-s5-c8_fcn_1xb8-500i_camvid-144x192_seed0``."""
    batch, crop = dataset_facts(study.data_base)
    return config_name(
        Cell(study.dataset, cell.model, cell.loss), batch, crop,
        dataset_name=study.dataset_name, model=study.models[cell.model],
        schedule_name=study.schedule_name, suffix=f'_seed{cell.seed}',
        loss=study.loss_table[cell.loss])
