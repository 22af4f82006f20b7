"""Study specs: which data sets, models, loss variants and seeds to run.

A spec is an mmengine config file of plain values (``_base_`` and
``_delete_`` work as in any config); docs/grid.md describes its keys.
:func:`load_study` validates one into a :class:`Study`.
"""
import itertools
import os
import os.path as osp
from dataclasses import dataclass, field, replace
from typing import Any, Dict, Optional, Sequence, Tuple

import mmseg_longtail

PACKAGE_DIR = osp.dirname(osp.abspath(mmseg_longtail.__file__))
# the checkout (editable installs), else the package's .mim copy of
# configs/ and tools/ (wheel installs)
REPO_ROOT = osp.dirname(PACKAGE_DIR)
if not osp.isfile(osp.join(REPO_ROOT, 'tools', 'train.py')):
    REPO_ROOT = osp.join(PACKAGE_DIR, '.mim')
CONFIG_ROOT = osp.join(REPO_ROOT, 'configs')
BASE_ROOT = osp.join(CONFIG_ROOT, '_base_')
TOOLS_DIR = osp.join(REPO_ROOT, 'tools')
GPUS = 1  # the "1x" of config names: the batch size is per process
SELECT_METRICS = ('mIoU', 'mIoU_tail', 'mIoU_body', 'mIoU_head', 'mDice',
                  'aAcc', 'mAcc')
SCOPE = 'mmseg_longtail::'
PAPER_GRID = SCOPE + 'grid/paper_grid.py'
KEYS = ('name', 'title', 'datasets', 'models', 'losses', 'schedule', 'seeds',
        'selected_seeds', 'extra_seeds', 'priority', 'select_metric',
        'work_root', 'results_dir', 'page', 'config_dir', 'full_res',
        'notes', 'report_bootstrap')


class SpecError(KeyError):
    """A study spec is wrong; the message names the file and the key."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def spec_path(path: Optional[str], spec_dir: str) -> Optional[str]:
    """A path written in a spec, made absolute: ``mmseg_longtail::X`` is X
    under the plugin's configs/, an absolute path stays, any other is
    relative to the spec's folder (as mmengine's ``_base_``)."""
    if path is None:
        return None
    path = osp.expanduser(str(path))
    if path.startswith(SCOPE):
        return osp.normpath(osp.join(CONFIG_ROOT, path[len(SCOPE):]))
    return osp.normpath(osp.join(spec_dir, path))


def rel_path(path: str) -> str:
    """``path`` as pages and messages show it: relative to the checkout
    where it lies inside or beside it (``../shared/...``), else relative to
    the current folder where it lies below it, else absolute."""
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
class _Part:
    """A data set, model or loss: its key in the spec, its base config
    (absolute), the piece of config names it gives and its title."""
    key: str
    base: str
    name: str
    title: str


@dataclass(frozen=True)
class DatasetSpec(_Part):
    data_root: Optional[str]  # None: the base's own
    class_stats_file: str
    selection: str  # 'val', or 'carve' (then ``carve`` is set)
    carve: Optional[Carve]
    report: str  # 'test' or 'val'
    batch_size: int  # the base's, per process
    crop_size: Tuple[int, int]


# config-name suffix per auxiliary-head choice; mmseg's names say nothing
# for its CE auxiliary head
AUX_SUFFIX = {'none': '-noaux', 'ce': '', 'same': '-auxsame'}


@dataclass(frozen=True)
class ModelSpec(_Part):
    size_divisor: int = 1  # training crops padded to multiples of it
    # the auxiliary head's loss: 'none' (no auxiliary head, as the U-Net
    # papers), 'ce' (mmseg's) or 'same' (the decode head's, at aux_weight)
    aux: str = 'ce'
    aux_weight: float = 0.4

    @property
    def file_name(self) -> str:
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
    (``LDAM (s=5, DRW)``); both are empty for the base setting."""
    options: Tuple[Tuple[str, Any], ...] = ()
    tag: str = ''
    label: str = ''

    @property
    def options_dict(self) -> Dict[str, Any]:
        return dict(self.options)


@dataclass(frozen=True)
class LossSpec(_Part):
    counted: bool  # needs the training-set class counts
    variants: Tuple[Variant, ...] = (Variant(), )

    def variant(self, tag: str) -> Variant:
        for v in self.variants:
            if v.tag == tag:
                return v
        raise KeyError(f'loss {self.key!r} has no variant {tag!r} '
                       f'({[v.tag for v in self.variants]})')

    def label(self, variant: Variant) -> str:
        return (f'{self.title} ({variant.label})'
                if variant.label else self.title)

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
    # resamples of the bootstrap interval on the report split (with
    # per-image mIoU); 0 turns both off
    report_bootstrap: int = 1000
    schedule_iters: Optional[int] = None  # None: the base's max_iters

    def final_seeds(self, loss: str) -> Tuple[int, ...]:
        """Seeds beyond ``seeds`` of the selected variant of ``loss``."""
        seeds = self.selected_seeds + self.extra_seeds.get(loss, ())
        return tuple(dict.fromkeys(s for s in seeds if s not in self.seeds))

    def seeds_of(self, loss: str) -> Tuple[int, ...]:
        return self.seeds + self.final_seeds(loss)

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


def _fmt(v: Any) -> str:
    return f'{v:g}' if isinstance(v, float) else str(v)


def _is_int(v: Any, low: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


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
            parts.append(key + _fmt(v).replace('.', 'p').replace('-', 'm'))
    return '-'.join(parts)


def _read_data_base(base: str) -> Tuple[Optional[str], int, tuple]:
    """(``class_stats_file``, train batch size, crop size) of a data set
    base. A base that sets ``crop_size`` but crops its training images to
    another size (it kept its parent's pipeline, whose values were fixed
    when the parent was read) is refused, naming the keys to redefine."""
    from mmengine.config import Config
    cfg = Config.fromfile(base)
    for key in ('num_classes', 'crop_size', 'class_stats_file'):
        if key not in cfg:
            raise SpecError(f'{base} defines no `{key}`, which grid cells '
                            'need (see docs/grid.md)')
    crop = tuple(cfg.crop_size)
    dataset = (cfg.get('train_dataloader') or {}).get('dataset') or {}
    where = 'train_dataloader.dataset'
    while 'pipeline' not in dataset and isinstance(dataset.get('dataset'),
                                                   dict):
        dataset, where = dataset['dataset'], where + '.dataset'
    for i, t in enumerate(dataset.get('pipeline') or []):
        if isinstance(t, dict) and tuple(t.get('crop_size', crop)) != crop:
            raise SpecError(
                f'{base}: crop_size is {crop} but {where}.pipeline'
                f'[{i}] ({t.get("type")}) crops {tuple(t["crop_size"])}. A '
                'base inherits its parent\'s pipeline with the parent\'s '
                'crop_size; redefine `train_pipeline` in it and set '
                '`train_dataloader = dict(dataset=dict(pipeline='
                'train_pipeline))`')
    return (cfg.class_stats_file, int(cfg.train_dataloader.batch_size),
            crop)


class _Reader:
    """Reads one spec dict, each error naming the spec file and key."""

    def __init__(self, path: str, raw: dict):
        self.path, self.raw = path, raw
        self.dir = osp.dirname(osp.abspath(path))
        self.work_root = ''  # statistics files default under it

    def resolve(self, path: Optional[str]) -> Optional[str]:
        return spec_path(path, self.dir)

    def require(self, ok: Any, msg: str) -> None:
        if not ok:
            raise SpecError(f'{self.path}: {msg}')

    def need(self, key: str) -> Any:
        self.require(key in self.raw, f'the study spec defines no `{key}`')
        return self.raw[key]

    def check_fields(self, d: dict, where: str, required: Sequence[str],
                     optional: Sequence[str] = ()) -> None:
        self.require(isinstance(d, dict), f'{where} must be a dict')
        missing = [k for k in required if k not in d]
        self.require(not missing, f'{where} needs {missing}')
        unknown = sorted(set(d) - set(required) - set(optional))
        self.require(not unknown, f'{where} has unknown fields {unknown}')

    def file(self, path: Optional[str], where: str) -> str:
        full = self.resolve(path)
        if not full or not osp.isfile(full):
            raise FileNotFoundError(f'{self.path}: {where} {full} not found')
        return full

    def seeds(self, value: Any, where: str) -> Tuple[int, ...]:
        try:
            return tuple(int(s) for s in value or ())
        except (TypeError, ValueError):
            raise SpecError(f'{self.path}: {where} must be a list of '
                            'integers') from None

    def parts(self, key: str, read) -> dict:
        return {k: read(k, d, f'{key}.{k}')
                for k, d in (self.need(key) or {}).items()}

    def dataset(self, key: str, d: dict, where: str) -> DatasetSpec:
        self.check_fields(d, where, ('base', 'name', 'title'),
                          ('data_root', 'class_stats_file', 'selection',
                           'report'))
        selection, carve = d.get('selection', 'val'), None
        if isinstance(selection, dict):
            self.check_fields(selection, f'{where}.selection', ('carve', ))
            c = selection['carve']
            self.check_fields(c, f'{where}.selection.carve',
                              ('fraction', 'group'), ('seed', ))
            self.require(0 < float(c['fraction']) < 1,
                         f'{where}.selection.carve.fraction must lie in '
                         f'(0, 1), got {c["fraction"]}')
            carve = Carve(float(c['fraction']), str(c['group']),
                          int(c.get('seed', 0)))
            selection = 'carve'
        self.require(carve or selection == 'val',
                     f"{where}.selection: 'val' or dict(carve=...), got "
                     f'{selection!r}')
        report = d.get('report', 'test')
        self.require(report in ('test', 'val'),
                     f"{where}.report: 'test' or 'val', got {report!r}")
        base = self.file(d['base'], f'{where}.base')
        own_stats, batch_size, crop_size = _read_data_base(base)
        data_root = self.resolve(d.get('data_root'))
        # else the base's own statistics (relative to the current folder,
        # like its data root) unless the study moves the data root
        stats = self.resolve(d.get('class_stats_file'))
        if not stats and own_stats and data_root is None:
            stats = osp.abspath(own_stats)
        return DatasetSpec(
            key=key, base=base, name=d['name'], title=d['title'],
            data_root=data_root, selection=selection, carve=carve,
            report=report, batch_size=batch_size, crop_size=crop_size,
            class_stats_file=stats or osp.join(self.work_root, 'class_stats',
                                               f'{key}.json'))

    def model(self, key: str, d: dict, where: str) -> ModelSpec:
        self.check_fields(d, where, ('base', 'name', 'title'),
                          ('size_divisor', 'aux', 'aux_weight'))
        aux = d.get('aux', 'ce')
        self.require(aux in AUX_SUFFIX, f'{where}.aux: one of '
                     f'{sorted(AUX_SUFFIX)}, got {aux!r}')
        weight = float(d.get('aux_weight', 0.4))
        self.require('aux_weight' not in d or aux == 'same',
                     f"{where}.aux_weight is read only with aux='same' "
                     "(the base config sets CE's weight)")
        self.require(weight > 0,
                     f'{where}.aux_weight must be positive, got {weight}')
        return ModelSpec(key, self.file(d['base'], f'{where}.base'),
                         d['name'], d['title'], int(d.get('size_divisor', 1)),
                         aux, weight)

    def loss(self, key: str, d: dict, where: str) -> LossSpec:
        from mmengine.config import Config
        from mmseg.registry import MODELS
        self.check_fields(d, where, ('base', 'name', 'title'),
                          ('options', 'sweep'))
        base = self.file(d['base'], f'{where}.base')
        cfg = Config.fromfile(base)
        self.require('loss_decode' in cfg,
                     f'{where}: {base} defines no `loss_decode`')
        loss_type = cfg.loss_decode['type']
        cls = MODELS.get(loss_type)
        self.require(cls, f'{where}: loss type {loss_type!r} of {base} is '
                     'not registered')
        # the loss class says whether it needs class counts
        counted = bool(getattr(cls, 'requires_counts', False))
        return LossSpec(
            key, base, d['name'], d['title'], counted,
            self.variants(f'{where}.sweep', d.get('sweep'),
                          dict(d.get('options') or {})))

    def variants(self, where: str, sweep: Any,
                 common: dict) -> Tuple[Variant, ...]:
        """A loss's settings from its ``sweep`` (a dict of option -> values:
        every combination; or a list of option dicts or ``dict(options=...,
        tag=..., label=...)``), each with the ``common`` options too."""
        if sweep is None:  # no sweep (a child spec may drop its parent's)
            return (Variant(tuple(common.items())), )
        if isinstance(sweep, dict):
            for k, values in sweep.items():
                self.require(
                    isinstance(values, (list, tuple)) and values,
                    f'{where}.{k}: a sweep dict maps an option to a '
                    'non-empty list of values')
            items = [dict(options=dict(zip(sweep, values)))
                     for values in itertools.product(*sweep.values())]
        else:
            self.require(isinstance(sweep, (list, tuple)) and sweep,
                         f'{where}: give a dict of option lists or a '
                         'non-empty list of variants')
            for i, item in enumerate(sweep):
                self.require(isinstance(item, dict),
                             f'{where}[{i}]: a variant is a dict')
            items = [x if 'options' in x else dict(options=x) for x in sweep]
        variants = []
        for i, item in enumerate(items):
            unknown = sorted(set(item) - {'options', 'tag', 'label'})
            self.require(not unknown,
                         f'{where}[{i}] has unknown fields {unknown}')
            opts = dict(item['options'])
            tag = item.get('tag') or _auto_tag(opts)
            label = item.get('label') or ', '.join(
                f'{k}={_fmt(v)}' for k, v in opts.items())
            options = tuple({**common, **opts}.items())
            variants.append(Variant(options, tag, label if tag else ''))
        tags = [v.tag for v in variants]
        dup = sorted({t for t in tags if tags.count(t) > 1})
        self.require(not dup, f'{where}: variants share the tags {dup}; '
                     'give each a distinct `tag`')
        return tuple(variants)


def load_study(path: str, full_res: bool = False,
               data_root: Optional[str] = None,
               work_root: Optional[str] = None,
               results_dir: Optional[str] = None) -> Study:
    """Read and validate a study spec (docs/grid.md), with its ``full_res``
    overrides merged in if ``full_res``. The arguments' paths are relative
    to the current folder. Wrong values raise :class:`SpecError` (or
    FileNotFoundError) naming the key."""
    from mmengine.config import Config

    import mmseg_longtail.models  # noqa: F401  (loss classes: counted)
    spec_file = osp.abspath(path)
    if not osp.isfile(spec_file):
        raise FileNotFoundError(f'study spec {path!r} not found')
    raw = Config.fromfile(spec_file).to_dict()
    r = _Reader(path, raw)
    if full_res:
        r.require(raw.get('full_res'),
                  'no `full_res` overrides for --full-res')
        raw = r.raw = _merge(raw, raw['full_res'])
    unknown = sorted(k for k in set(raw) - set(KEYS) if not k.startswith('_'))
    r.require(not unknown, f'unknown keys {unknown} (known: {sorted(KEYS)})')
    name = raw.get('name') or osp.splitext(osp.basename(spec_file))[0]
    work = (osp.abspath(work_root) if work_root else r.resolve(
        raw.get('work_root')) or osp.abspath(osp.join('work_dirs', name)))

    r.work_root = work
    datasets = r.parts('datasets', r.dataset)
    models, losses = r.parts('models', r.model), r.parts('losses', r.loss)
    r.require(datasets and models and losses,
              'datasets, models and losses must not be empty')
    if data_root:
        r.require(len(datasets) == 1,
                  '--data-root needs a study with one data set')
        (key, ds), = datasets.items()
        datasets[key] = replace(ds, data_root=osp.abspath(data_root))
    seeds = r.seeds(r.need('seeds'), 'seeds')
    r.require(seeds, 'seeds must not be empty')
    extra = {lo: r.seeds(v, f'extra_seeds.{lo}')
             for lo, v in (raw.get('extra_seeds') or {}).items()}
    priority = tuple(raw.get('priority') or ())
    for where, keys in (('extra_seeds', extra), ('priority', priority)):
        bad = [lo for lo in keys if lo not in losses]
        r.require(not bad, f'{where} names losses {bad} that the study '
                  'does not run')
    metric = raw.get('select_metric', 'mIoU')
    r.require(metric in SELECT_METRICS, f'select_metric {metric!r} is not '
              f'one of {SELECT_METRICS}')
    bootstrap = raw.get('report_bootstrap', 1000)
    r.require(_is_int(bootstrap, 0), 'report_bootstrap must be an integer '
              '>= 0 (resamples of the report split; 0: off), got '
              f'{bootstrap!r}')
    sched = r.need('schedule')
    r.check_fields(sched, 'schedule', ('base', ), ('name', 'iters'))
    schedule_base = r.file(sched['base'], 'schedule.base')
    iters = sched.get('iters')
    r.require(iters is None or _is_int(iters, 1), 'schedule.iters must be a '
              f'positive integer, got {iters!r}')
    sched_name = sched.get('name')
    if not sched_name:  # mmseg's: 30k; 2400i if not whole thousands
        n = iters or int(Config.fromfile(schedule_base).train_cfg.max_iters)
        sched_name = f'{n // 1000}k' if n % 1000 == 0 else f'{n}i'
    results = (osp.abspath(results_dir) if results_dir else r.resolve(
        raw.get('results_dir')) or osp.join(work, 'results'))
    return Study(
        path=spec_file, name=name, title=raw.get('title', name),
        variant='full_res' if full_res else 'default', datasets=datasets,
        models=models, losses=losses, schedule_base=schedule_base,
        schedule_iters=iters, schedule_name=sched_name, seeds=seeds,
        selected_seeds=r.seeds(raw.get('selected_seeds'), 'selected_seeds'),
        extra_seeds=extra, priority=priority, select_metric=metric,
        work_root=work, results_dir=results,
        page=r.resolve(raw.get('page')) or osp.join(results, 'page.md'),
        config_dir=r.resolve(raw.get('config_dir')),
        notes=tuple(raw.get('notes') or ()), report_bootstrap=bootstrap)


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
