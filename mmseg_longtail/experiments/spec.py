"""Study specs: which data sets, models, loss variants and seeds to run.

A study spec is an mmengine config file of plain values (so specs compose
with ``_base_`` and override with ``_delete_`` like any config). The paper
grid (``configs/grid/paper_grid.py``) and the CamVid study
(``configs/camvid_study/study_cpu.py``) are both specs; docs/grid.md
describes the keys. :func:`load_study` validates a spec and returns a
:class:`Study`, whose paths are absolute.
"""
import itertools
import os
import os.path as osp
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Optional, Sequence, Tuple

import mmseg_longtail

PACKAGE_DIR = osp.dirname(osp.abspath(mmseg_longtail.__file__))


def _find_repo_root() -> str:
    """The checkout (editable installs) or the package's ``.mim`` copy of
    configs/ and tools/ (wheel installs)."""
    parent = osp.dirname(PACKAGE_DIR)
    if osp.isfile(osp.join(parent, 'tools', 'train.py')):
        return parent
    return osp.join(PACKAGE_DIR, '.mim')


REPO_ROOT = _find_repo_root()
CONFIG_ROOT = osp.join(REPO_ROOT, 'configs')
BASE_ROOT = osp.join(CONFIG_ROOT, '_base_')
TOOLS_DIR = osp.join(REPO_ROOT, 'tools')
GPUS = 1  # the "1x" of config names: the batch size is per process
SELECT_METRICS = ('mIoU', 'mIoU_tail', 'mIoU_body', 'mIoU_head', 'mDice',
                  'aAcc', 'mAcc')


class SpecError(KeyError):
    """A study spec is wrong; the message names the file and the key."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


SCOPE = 'mmseg_longtail::'


def spec_path(path: Optional[str], spec_dir: str) -> Optional[str]:
    """A path written in a spec, made absolute: ``mmseg_longtail::X`` is X
    under the plugin's configs/ (wherever it is installed), an absolute path
    stays, any other is relative to the spec file's folder (as mmengine's
    ``_base_``)."""
    if path is None:
        return None
    path = osp.expanduser(str(path))
    if path.startswith(SCOPE):
        return osp.normpath(osp.join(CONFIG_ROOT, path[len(SCOPE):]))
    return osp.normpath(path if osp.isabs(path) else osp.join(spec_dir,
                                                              path))


def rel_path(path: str) -> str:
    """``path`` as pages and messages show it: relative to the plugin's
    checkout where it lies inside it or beside it (``../shared/...``), else
    relative to the current folder where it lies below it, else absolute."""
    path = osp.abspath(path)
    for root, up in ((REPO_ROOT, osp.join('..', '..')), (os.getcwd(), '..')):
        rel = osp.relpath(path, root)
        if not rel.startswith(up):
            return rel
    return path


# --------------------------------------------------------------- the parts
@dataclass(frozen=True)
class Carve:
    """A selection split carved from the training split: whole groups of
    files (``group``: a regular expression whose first group is the group
    key, e.g. the video sequence) until ``fraction`` of the files."""
    fraction: float
    group: str
    seed: int = 0


@dataclass(frozen=True)
class DatasetSpec:
    key: str
    base: str  # absolute path of the data set base config
    name: str  # file-name piece (the crop size is appended)
    title: str
    data_root: Optional[str] = None  # None: the base's own
    class_stats_file: Optional[str] = None  # absolute
    selection: str = 'val'  # 'val', or 'carve' (then ``carve`` is set)
    carve: Optional[Carve] = None
    report: str = 'test'  # 'test' or 'val'


# config-name suffix per auxiliary-head choice; mmseg's own names say
# nothing for its CE auxiliary head, so 'ce' adds nothing either
AUX_SUFFIX = {'none': '-noaux', 'ce': '', 'same': '-auxsame'}


@dataclass(frozen=True)
class ModelSpec:
    key: str
    base: str
    name: str
    title: str
    # training batches are padded to the crop size rounded up to a multiple
    # of this (mmseg's UNet needs sides divisible by 16)
    size_divisor: int = 1
    # the auxiliary head's loss: 'none' (no auxiliary head: the networks of
    # the U-Net-family papers), 'ce' (mmseg's convention, e.g. DeepLab) or
    # 'same' (the decode head's loss, weight ``aux_weight``)
    aux: str = 'ce'
    aux_weight: float = 0.4

    @property
    def file_name(self) -> str:
        """Name piece in config stems: says when the auxiliary head is not
        mmseg's CE one."""
        return self.name + AUX_SUFFIX[self.aux]

    @property
    def aux_label(self) -> str:
        """How a page states the auxiliary head."""
        if self.aux == 'none':
            return 'no auxiliary head'
        loss = 'CE' if self.aux == 'ce' else 'the decode head\'s loss'
        return f'auxiliary head with {loss} (weight {self.aux_weight:g})'


@dataclass(frozen=True)
class Variant:
    """One setting of a loss: options set on its base's ``loss_decode``.

    ``tag`` goes into run names (``ldam-s5-drw``), ``label`` into tables
    (``LDAM (s=5, DRW)``); both are empty for the base setting.
    """
    options: Tuple[Tuple[str, Any], ...] = ()
    tag: str = ''
    label: str = ''

    @property
    def options_dict(self) -> Dict[str, Any]:
        return dict(self.options)


@dataclass(frozen=True)
class LossSpec:
    key: str
    base: str
    name: str
    title: str
    # needs the training-set class counts (the loss class says so)
    counted: bool
    variants: Tuple[Variant, ...] = (Variant(), )

    def variant(self, tag: str) -> Variant:
        for v in self.variants:
            if v.tag == tag:
                return v
        raise KeyError(f'loss {self.key!r} has no variant {tag!r} '
                       f'({[v.tag for v in self.variants]})')

    def label(self, variant: Variant) -> str:
        return (f'{self.title} ({variant.label})' if variant.label else
                self.title)

    def file_name(self, variant: Variant) -> str:
        return f'{self.name}-{variant.tag}' if variant.tag else self.name


@dataclass(frozen=True)
class Study:
    """A validated study spec; every path absolute."""
    path: str
    name: str
    title: str
    variant: str  # 'default' or 'full_res'
    datasets: Dict[str, DatasetSpec]
    models: Dict[str, ModelSpec]
    losses: Dict[str, LossSpec]
    schedule_base: str
    schedule_name: str
    seeds: Tuple[int, ...]
    selected_seeds: Tuple[int, ...] = ()
    extra_seeds: Dict[str, Tuple[int, ...]] = field(default_factory=dict)
    priority: Tuple[str, ...] = ()
    select_metric: str = 'mIoU'
    work_root: str = ''
    results_dir: Optional[str] = None
    page: Optional[str] = None
    config_dir: Optional[str] = None  # committed leaf configs (paper grid)
    notes: Tuple[str, ...] = ()
    # resamples of the per-image bootstrap interval on the report split
    # (with per-image mIoU); 0 turns both off
    report_bootstrap: int = 1000
    schedule_iters: Optional[int] = None  # None: the base's max_iters

    def final_seeds(self, loss: str) -> Tuple[int, ...]:
        """Seeds beyond ``seeds`` that the selected variant of ``loss``
        runs with."""
        out = []
        for s in tuple(self.selected_seeds) + tuple(
                self.extra_seeds.get(loss, ())):
            if s not in self.seeds and s not in out:
                out.append(s)
        return tuple(out)

    def seeds_of(self, loss: str) -> Tuple[int, ...]:
        return tuple(self.seeds) + self.final_seeds(loss)

    def command(self, tool: str = 'tools/grid.py') -> str:
        """The command that runs (or pages) this study, repo-relative."""
        flag = ' --full-res' if self.variant == 'full_res' else ''
        return f'python {tool} --study {rel_path(self.path)}{flag}'


# ----------------------------------------------------------------- loading
def _merge(base: dict, override: dict) -> dict:
    """``base`` updated by ``override``, dicts merged recursively; a dict
    with ``_delete_=True`` replaces instead."""
    out = dict(base)
    for k, v in override.items():
        if isinstance(v, dict) and v.get('_delete_'):
            out[k] = {x: y for x, y in v.items() if x != '_delete_'}
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _schedule_name(schedule_base: str, iters: Optional[int] = None) -> str:
    """mmseg's schedule piece of a name: ``30k``, ``80k``; ``400i`` for
    schedules that are not whole thousands."""
    from mmengine.config import Config
    if iters is None:
        iters = int(Config.fromfile(schedule_base).train_cfg.max_iters)
    return f'{iters // 1000}k' if iters % 1000 == 0 else f'{iters}i'


def _fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f'{v:g}'
    return str(v)


def _auto_tag(options: Dict[str, Any]) -> str:
    """``{'gamma': 0.5, 'distribution': 'uniform'}`` -> ``gamma0p5-uniform``
    (file-name safe: strings stand for themselves, numbers follow their
    option's name)."""
    parts = []
    for k, v in options.items():
        key = k.replace('_', '')
        if isinstance(v, bool):
            parts.append(key if v else f'no{key}')
        elif isinstance(v, str):
            parts.append(v.replace('_', '').replace('.', 'p'))
        else:
            parts.append(key + _fmt_value(v).replace('.', 'p').replace(
                '-', 'm'))
    return '-'.join(parts)


def _expand_sweep(where: str, sweep: Any) -> List[Variant]:
    """A loss's ``sweep``: a dict of option -> list of values (every
    combination) or a list of variants, each an option dict or
    ``dict(options=..., tag=..., label=...)``."""
    items: List[dict] = []
    if isinstance(sweep, dict):
        keys = list(sweep)
        for k in keys:
            if not isinstance(sweep[k], (list, tuple)) or not sweep[k]:
                raise SpecError(f'{where}.{k}: a sweep dict maps an option '
                                'to a non-empty list of values')
        for values in itertools.product(*(sweep[k] for k in keys)):
            items.append(dict(options=dict(zip(keys, values))))
    elif isinstance(sweep, (list, tuple)) and sweep:
        for i, item in enumerate(sweep):
            if not isinstance(item, dict):
                raise SpecError(f'{where}[{i}]: a variant is a dict')
            items.append(dict(item) if 'options' in item else dict(
                options=dict(item)))
    else:
        raise SpecError(f'{where}: give a dict of option lists or a '
                        'non-empty list of variants')
    variants = []
    for i, item in enumerate(items):
        unknown = set(item) - {'options', 'tag', 'label'}
        if unknown:
            raise SpecError(f'{where}[{i}] has unknown fields '
                            f'{sorted(unknown)}')
        opts = dict(item['options'])
        tag = item.get('tag') or _auto_tag(opts)
        label = item.get('label') or ', '.join(
            f'{k}={_fmt_value(v)}' for k, v in opts.items())
        if not tag:
            tag, label = '', ''
        variants.append(Variant(tuple(opts.items()), tag, label))
    tags = [v.tag for v in variants]
    dup = sorted({t for t in tags if tags.count(t) > 1})
    if dup:
        raise SpecError(f'{where}: variants share the tags {dup}; give '
                        'each a distinct `tag`')
    return variants


def _loss_counted(base: str, where: str) -> Tuple[bool, str]:
    """(needs class counts, type) of a loss base config, asked of the loss
    class itself (``requires_counts``)."""
    from mmengine.config import Config
    from mmseg.registry import MODELS
    cfg = Config.fromfile(base)
    if 'loss_decode' not in cfg:
        raise SpecError(f'{where}: {base} defines no `loss_decode`')
    loss_type = cfg.loss_decode['type']
    cls = MODELS.get(loss_type)
    if cls is None:
        raise SpecError(f'{where}: loss type {loss_type!r} of {base} is not '
                        'registered')
    return bool(getattr(cls, 'requires_counts', False)), loss_type


class _Reader:
    """Reads one spec dict, each error naming the spec file and key."""

    def __init__(self, path: str, raw: dict):
        self.path, self.raw = path, raw
        self.dir = osp.dirname(osp.abspath(path))

    def resolve(self, path: Optional[str]) -> Optional[str]:
        return spec_path(path, self.dir)

    def err(self, msg: str) -> SpecError:
        return SpecError(f'{self.path}: {msg}')

    def need(self, key: str) -> Any:
        if key not in self.raw:
            raise self.err(f'the study spec defines no `{key}`')
        return self.raw[key]

    def check_fields(self, d: dict, where: str, required: Sequence[str],
                     optional: Sequence[str]) -> None:
        if not isinstance(d, dict):
            raise self.err(f'{where} must be a dict')
        missing = [k for k in required if k not in d]
        if missing:
            raise self.err(f'{where} needs {missing}')
        unknown = sorted(set(d) - set(required) - set(optional))
        if unknown:
            raise self.err(f'{where} has unknown fields {unknown}')

    def file(self, path: Optional[str], where: str) -> str:
        full = self.resolve(path)
        if not full or not osp.isfile(full):
            raise FileNotFoundError(f'{self.path}: {where} {full} not found')
        return full

    def dataset(self, key: str, d: dict, work_root: str) -> DatasetSpec:
        where = f'datasets.{key}'
        self.check_fields(d, where, ('base', 'name', 'title'),
                          ('data_root', 'class_stats_file', 'selection',
                           'report'))
        selection, carve = d.get('selection', 'val'), None
        if isinstance(selection, dict):
            self.check_fields(selection, f'{where}.selection', ('carve', ),
                              ())
            c = selection['carve']
            self.check_fields(c, f'{where}.selection.carve',
                              ('fraction', 'group'), ('seed', ))
            if not 0 < float(c['fraction']) < 1:
                raise self.err(f'{where}.selection.carve.fraction must lie '
                               f'in (0, 1), got {c["fraction"]}')
            carve = Carve(float(c['fraction']), str(c['group']),
                          int(c.get('seed', 0)))
            selection = 'carve'
        elif selection != 'val':
            raise self.err(f"{where}.selection: 'val' or dict(carve=...), "
                           f'got {selection!r}')
        report = d.get('report', 'test')
        if report not in ('test', 'val'):
            raise self.err(f"{where}.report: 'test' or 'val', got "
                           f'{report!r}')
        base = self.file(d['base'], f'{where}.base')
        own_stats = read_data_base(base)
        data_root = self.resolve(d.get('data_root'))
        stats = self.resolve(d.get('class_stats_file')) or stats_file(
            key, own_stats, work_root, data_root is not None)
        return DatasetSpec(
            key=key, base=base, name=d['name'], title=d['title'],
            data_root=data_root, class_stats_file=stats,
            selection=selection, carve=carve, report=report)

    def model(self, key: str, d: dict) -> ModelSpec:
        where = f'models.{key}'
        self.check_fields(d, where, ('base', 'name', 'title'),
                          ('size_divisor', 'aux', 'aux_weight'))
        aux = d.get('aux', 'ce')
        if aux not in AUX_SUFFIX:
            raise self.err(f'{where}.aux: one of {sorted(AUX_SUFFIX)}, got '
                           f'{aux!r}')
        weight = float(d.get('aux_weight', 0.4))
        if 'aux_weight' in d and aux != 'same':
            raise self.err(f"{where}.aux_weight is read only with "
                           f"aux='same' (the base config sets CE's weight)")
        if weight <= 0:
            raise self.err(f'{where}.aux_weight must be positive, got '
                           f'{weight}')
        return ModelSpec(key, self.file(d['base'], f'{where}.base'),
                         d['name'], d['title'], int(d.get('size_divisor', 1)),
                         aux, weight)

    def loss(self, key: str, d: dict) -> LossSpec:
        where = f'losses.{key}'
        self.check_fields(d, where, ('base', 'name', 'title'),
                          ('options', 'sweep'))
        base = self.file(d['base'], f'{where}.base')
        counted, _ = _loss_counted(base, where)
        common = dict(d.get('options') or {})
        if d.get('sweep') is not None:  # None: a child spec drops a sweep
            variants = _expand_sweep(f'{where}.sweep', d['sweep'])
            variants = [replace(v, options=tuple({**common, **dict(
                v.options)}.items())) for v in variants]
        else:
            variants = [Variant(tuple(common.items()))]
        return LossSpec(key, base, d['name'], d['title'], counted,
                        tuple(variants))


def load_study(path: str, full_res: bool = False,
               data_root: Optional[str] = None,
               work_root: Optional[str] = None,
               results_dir: Optional[str] = None) -> Study:
    """Read and validate a study spec.

    Keys (docs/grid.md has the full reference): ``name``, ``title``,
    ``datasets`` / ``models`` / ``losses`` (key -> dict), ``schedule``
    (``dict(base=...)``), ``seeds``, ``selected_seeds``, ``extra_seeds``,
    ``priority``, ``select_metric``, ``work_root``, ``results_dir``,
    ``page``, ``config_dir``, ``report_bootstrap`` and ``full_res``
    (overrides merged in with ``full_res=True``). Relative paths in the
    spec are relative to the spec's folder, ``mmseg_longtail::X`` is X under
    the plugin's configs/; ``data_root`` (one data set only), ``work_root``
    and ``results_dir`` given here are relative to the current folder. The
    defaults write nothing beside the spec: ``work_dirs/<name>`` of the
    current folder, the records in its ``results/``, the page there too.
    Wrong values raise :class:`SpecError` (or FileNotFoundError) naming the
    key.
    """
    from mmengine.config import Config

    import mmseg_longtail.models  # noqa: F401  (loss classes: counted)
    spec_path = osp.abspath(path)
    if not osp.isfile(spec_path):
        raise FileNotFoundError(f'study spec {path!r} not found')
    raw = Config.fromfile(spec_path).to_dict()
    r = _Reader(path, raw)
    variant = 'default'
    if full_res:
        if not raw.get('full_res'):
            raise r.err('no `full_res` overrides for --full-res')
        raw = _merge(raw, raw['full_res'])
        r.raw = raw
        variant = 'full_res'
    known = {'name', 'title', 'datasets', 'models', 'losses', 'schedule',
             'seeds', 'selected_seeds', 'extra_seeds', 'priority',
             'select_metric', 'work_root', 'results_dir', 'page',
             'config_dir', 'full_res', 'notes', 'report_bootstrap'}
    unknown = sorted(k for k in set(raw) - known if not k.startswith('_'))
    if unknown:
        raise r.err(f'unknown keys {unknown} (known: {sorted(known)})')
    name = raw.get('name') or osp.splitext(osp.basename(spec_path))[0]
    work = (osp.abspath(work_root) if work_root else r.resolve(
        raw.get('work_root')) or osp.abspath(osp.join('work_dirs', name)))

    datasets = {k: r.dataset(k, d, work)
                for k, d in (r.need('datasets') or {}).items()}
    models = {k: r.model(k, d)
              for k, d in (r.need('models') or {}).items()}
    losses = {k: r.loss(k, d)
              for k, d in (r.need('losses') or {}).items()}
    if not datasets or not models or not losses:
        raise r.err('datasets, models and losses must not be empty')
    if data_root:
        if len(datasets) != 1:
            raise r.err('--data-root needs a study with one data set')
        (key, ds), = datasets.items()
        datasets[key] = replace(ds, data_root=osp.abspath(data_root))

    def seed_list(value, where) -> Tuple[int, ...]:
        try:
            return tuple(int(s) for s in value or ())
        except (TypeError, ValueError):
            raise r.err(f'{where} must be a list of integers') from None

    seeds = seed_list(r.need('seeds'), 'seeds')
    if not seeds:
        raise r.err('seeds must not be empty')
    extra = {lo: seed_list(v, f'extra_seeds.{lo}')
             for lo, v in (raw.get('extra_seeds') or {}).items()}
    priority = tuple(raw.get('priority') or ())
    for where, keys in (('extra_seeds', extra), ('priority', priority)):
        bad = [lo for lo in keys if lo not in losses]
        if bad:
            raise r.err(f'{where} names losses {bad} that the study does '
                        'not run')
    metric = raw.get('select_metric', 'mIoU')
    if metric not in SELECT_METRICS:
        raise r.err(f'select_metric {metric!r} is not one of '
                    f'{SELECT_METRICS}')
    bootstrap = raw.get('report_bootstrap', 1000)
    if isinstance(bootstrap, bool) or not isinstance(
            bootstrap, int) or bootstrap < 0:
        raise r.err('report_bootstrap must be an integer >= 0 (resamples '
                    f'of the report split; 0: off), got {bootstrap!r}')
    sched = r.need('schedule')
    r.check_fields(sched, 'schedule', ('base', ), ('name', 'iters'))
    schedule_base = r.file(sched['base'], 'schedule.base')
    iters = sched.get('iters')
    if iters is not None and (isinstance(iters, bool)
                              or not isinstance(iters, int) or iters < 1):
        raise r.err(f'schedule.iters must be a positive integer, got '
                    f'{iters!r}')
    results = (osp.abspath(results_dir) if results_dir else r.resolve(
        raw.get('results_dir')) or osp.join(work, 'results'))
    return Study(
        path=spec_path, name=name, title=raw.get('title', name),
        variant=variant, datasets=datasets, models=models, losses=losses,
        schedule_base=schedule_base, schedule_iters=iters,
        schedule_name=sched.get('name') or _schedule_name(schedule_base,
                                                          iters),
        seeds=seeds,
        selected_seeds=seed_list(raw.get('selected_seeds'),
                                 'selected_seeds'),
        extra_seeds=extra, priority=priority, select_metric=metric,
        work_root=work, results_dir=results,
        page=r.resolve(raw.get('page')) or osp.join(results, 'page.md'),
        config_dir=r.resolve(raw.get('config_dir')),
        notes=tuple(raw.get('notes') or ()), report_bootstrap=bootstrap)


def stats_file(key: str, own: Optional[str], work_root: str,
               root_overridden: bool) -> str:
    """The class statistics of a data set whose spec names none: the base's
    own ``class_stats_file`` (``own``; relative to the current folder, like
    the base's data root), unless the study moves the data root; else one
    under the work root."""
    if own and not root_overridden:
        return osp.abspath(own)
    return osp.join(work_root, 'class_stats', f'{key}.json')


def read_data_base(base: str) -> Optional[str]:
    """Check a data set base and return its ``class_stats_file``. A base
    that sets ``crop_size`` but crops its training images to another size
    (it changed ``crop_size`` and kept its parent's pipeline, whose values
    were fixed when the parent was read) is refused, naming the keys to
    redefine."""
    from mmengine.config import Config
    cfg = Config.fromfile(base)
    crop = cfg.get('crop_size')
    dataset = (cfg.get('train_dataloader') or {}).get('dataset') or {}
    where = 'train_dataloader.dataset'
    while 'pipeline' not in dataset and isinstance(dataset.get('dataset'),
                                                   dict):
        dataset, where = dataset['dataset'], where + '.dataset'
    for i, t in enumerate(dataset.get('pipeline') or []):
        if crop is not None and isinstance(t, dict) and 'crop_size' in t \
                and tuple(t['crop_size']) != tuple(crop):
            raise SpecError(
                f'{base}: crop_size is {tuple(crop)} but {where}.pipeline'
                f'[{i}] ({t.get("type")}) crops {tuple(t["crop_size"])}. A '
                'base inherits its parent\'s pipeline with the parent\'s '
                'crop_size; redefine `train_pipeline` in it and set '
                '`train_dataloader = dict(dataset=dict(pipeline='
                'train_pipeline))`')
    return cfg.get('class_stats_file')


PAPER_GRID = SCOPE + 'grid/paper_grid.py'


@dataclass
class StudySource:
    """A study as the command line names it: the spec (None: the paper
    grid) and the overrides, made absolute so that a SLURM array task loads
    the same study from any folder."""
    spec: Optional[str] = None
    full_res: bool = False
    data_root: Optional[str] = None
    work_root: Optional[str] = None
    results_dir: Optional[str] = None

    def __post_init__(self) -> None:
        for name in ('spec', 'data_root', 'work_root', 'results_dir'):
            if getattr(self, name):
                setattr(self, name, osp.abspath(str(getattr(self, name))))

    def load(self) -> Study:
        return load_study(self.spec or spec_path(PAPER_GRID, ''),
                          self.full_res, self.data_root, self.work_root,
                          self.results_dir)
