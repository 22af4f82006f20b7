"""Study specs (mmengine configs of plain values, docs/grid.md): which
data sets, models, loss variants and seeds to run."""
import itertools
import os
import os.path as osp
from dataclasses import dataclass, field, replace
from typing import Any, Dict, Optional, Tuple

from mmengine.config import Config
from mmseg.registry import MODELS

import mmseg_longtail

PACKAGE_DIR = osp.dirname(osp.abspath(mmseg_longtail.__file__))
# the checkout, else a wheel's .mim copy of configs/ and tools/
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
OPTIONAL = {  # the fields a part may set besides base, name and title
    'datasets': ('data_root', 'class_stats_file', 'selection', 'report'),
    'models': ('size_divisor', 'aux', 'aux_weight'),
    'losses': ('options', 'sweep')}


class SpecError(KeyError):
    """A study spec is wrong; the message names the file and the key."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def spec_path(path: Optional[str], spec_dir: str) -> Optional[str]:
    """``path`` made absolute (``mmseg_longtail::X``: X under configs/)."""
    if not path:
        return None
    path = osp.expanduser(str(path))
    if path.startswith(SCOPE):
        path, spec_dir = path[len(SCOPE):], CONFIG_ROOT
    return osp.normpath(osp.join(spec_dir, path))


def rel_path(path: str) -> str:
    """``path`` as pages and messages show it: relative to the checkout
    (also ``../shared/...``) or below the current folder, else absolute."""
    path = osp.abspath(path)
    for root, up in ((REPO_ROOT, osp.join('..', '..')), (os.getcwd(), '..')):
        rel = osp.relpath(path, root)
        if not rel.startswith(up):
            return rel
    return path


@dataclass(frozen=True)
class Carve:
    """A selection split of whole groups of training files (``group``: a
    regular expression whose first group is the key) of ``fraction``."""
    fraction: float
    group: str
    seed: int = 0


@dataclass(frozen=True)
class _Part:
    """A data set, model or loss; ``name``: its piece of config names."""
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


# config-name suffix per auxiliary-head choice (mmseg's CE: none)
AUX_SUFFIX = {'none': '-noaux', 'ce': '', 'same': '-auxsame'}


@dataclass(frozen=True)
class ModelSpec(_Part):
    size_divisor: int = 1  # training crops padded to multiples of it
    aux: str = 'ce'  # the auxiliary head: 'none', 'ce' or 'same' loss
    aux_weight: float = 0.4

    @property
    def file_name(self) -> str:
        return self.name + AUX_SUFFIX[self.aux]

    @property
    def aux_label(self) -> str:
        loss = {'ce': 'CE', 'same': 'the decode head\'s loss'}.get(self.aux)
        return (f'auxiliary head with {loss} (weight {self.aux_weight:g})'
                if loss else 'no auxiliary head')


@dataclass(frozen=True)
class Variant:
    """Options set on a loss base's ``loss_decode``; ``tag`` goes into run
    names, ``label`` into tables (both empty for the base setting)."""
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
    report_bootstrap: int = 1000  # report-split resamples; 0: off
    schedule_iters: Optional[int] = None  # None: the base's max_iters

    def final_seeds(self, loss: str) -> Tuple[int, ...]:
        """Seeds of the selected variant of ``loss`` beyond ``seeds``."""
        seeds = self.selected_seeds + self.extra_seeds.get(loss, ())
        return tuple(dict.fromkeys(s for s in seeds if s not in self.seeds))

    def seeds_of(self, loss: str) -> Tuple[int, ...]:
        return self.seeds + self.final_seeds(loss)

    def command(self, tool: str = 'tools/grid.py') -> str:
        flag = ' --full-res' if self.variant == 'full_res' else ''
        return f'python {tool} --study {rel_path(self.path)}{flag}'


def _fmt(v: Any) -> str:
    return f'{v:g}' if isinstance(v, float) else str(v)


def _tag(k: str, v: Any) -> str:
    """A file-name safe tag of an option: ``gamma=0.5`` -> ``gamma0p5``."""
    key = k.replace('_', '')
    if isinstance(v, bool):
        return key if v else f'no{key}'
    if isinstance(v, str):
        return v.replace('_', '').replace('.', 'p')
    return key + _fmt(v).replace('.', 'p').replace('-', 'm')


class _Reader:
    """Reads one spec dict, each error naming the spec file and key."""

    def __init__(self, path: str, raw: dict):
        self.path, self.raw = path, raw
        self.work_root = ''  # statistics files default under it

    def resolve(self, path: Optional[str]) -> Optional[str]:
        return spec_path(path, osp.dirname(osp.abspath(self.path)))

    def require(self, ok: Any, msg: str) -> None:
        if not ok:
            raise SpecError(f'{self.path}: {msg}')

    def check(self, d: Any, where: str, required: Tuple[str, ...],
              optional: Tuple[str, ...] = ()) -> dict:
        self.require(isinstance(d, dict), f'{where} must be a dict')
        missing = [k for k in required if k not in d]
        self.require(not missing, f'{where} needs {missing}')
        unknown = sorted(set(d) - set(required) - set(optional))
        self.require(not unknown, f'{where} has unknown fields {unknown}')
        return d

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
        """``read(key, d, where, base)`` of each part under ``key``."""
        out = {}
        for k, d in (self.raw.get(key) or {}).items():
            where = f'{key}.{k}'
            self.check(d, where, ('base', 'name', 'title'), OPTIONAL[key])
            out[k] = read(k, d, where, self.file(d['base'], f'{where}.base'))
        return out

    def dataset(self, key: str, d: dict, where: str,
                base: str) -> DatasetSpec:
        selection, carve = d.get('selection', 'val'), None
        if isinstance(selection, dict):
            w = f'{where}.selection'
            c = self.check(selection, w, ('carve', ))['carve']
            self.check(c, f'{w}.carve', ('fraction', 'group'), ('seed', ))
            carve = Carve(float(c['fraction']), str(c['group']),
                          int(c.get('seed', 0)))
            self.require(0 < carve.fraction < 1, f'{w}.carve.fraction must '
                         f'lie in (0, 1), got {c["fraction"]}')
            selection = 'carve'
        self.require(carve or selection == 'val',
                     f"{where}.selection: 'val' or dict(carve=...), got "
                     f'{selection!r}')
        report = d.get('report', 'test')
        self.require(report in ('test', 'val'),
                     f"{where}.report: 'test' or 'val', got {report!r}")
        cfg = Config.fromfile(base)
        for k in ('num_classes', 'crop_size', 'class_stats_file'):
            if k not in cfg:
                raise SpecError(f'{base} defines no `{k}`, which grid cells '
                                'need (see docs/grid.md)')
        # a base cropping to another size kept its parent's pipeline
        crop = tuple(cfg.crop_size)
        data, at = cfg.train_dataloader.get('dataset') or {}, 'dataset'
        while 'pipeline' not in data and isinstance(data.get('dataset'), dict):
            data, at = data['dataset'], at + '.dataset'
        for i, t in enumerate(data.get('pipeline') or []):
            if isinstance(t, dict) and tuple(t.get('crop_size', crop)) != crop:
                raise SpecError(
                    f'{base}: crop_size is {crop} but train_dataloader.{at}'
                    f'.pipeline[{i}] ({t.get("type")}) crops '
                    f'{tuple(t["crop_size"])}. A base inherits its parent\'s '
                    'pipeline with the parent\'s crop_size; redefine '
                    '`train_pipeline` in it and set `train_dataloader = '
                    'dict(dataset=dict(pipeline=train_pipeline))`')
        data_root = self.resolve(d.get('data_root'))
        # else the base's own (relative to the current folder, as its data
        # root) unless the study moves the data root
        stats = self.resolve(d.get('class_stats_file'))
        if not stats and cfg.class_stats_file and data_root is None:
            stats = osp.abspath(cfg.class_stats_file)
        return DatasetSpec(
            key, base, d['name'], d['title'], data_root,
            stats or osp.join(self.work_root, 'class_stats', f'{key}.json'),
            selection, carve, report, int(cfg.train_dataloader.batch_size),
            crop)

    def model(self, key: str, d: dict, where: str, base: str) -> ModelSpec:
        m = ModelSpec(key, base, d['name'], d['title'],
                      int(d.get('size_divisor', 1)), d.get('aux', 'ce'),
                      float(d.get('aux_weight', 0.4)))
        self.require(m.aux in AUX_SUFFIX, f'{where}.aux: one of '
                     f'{sorted(AUX_SUFFIX)}, got {m.aux!r}')
        self.require('aux_weight' not in d or m.aux == 'same',
                     f"{where}.aux_weight is read only with aux='same' "
                     "(the base config sets CE's weight)")
        self.require(m.aux_weight > 0, f'{where}.aux_weight must be '
                     f'positive, got {m.aux_weight}')
        return m

    def loss(self, key: str, d: dict, where: str, base: str) -> LossSpec:
        loss = Config.fromfile(base).get('loss_decode') or {}
        self.require(loss, f'{where}: {base} defines no `loss_decode`')
        cls = MODELS.get(loss['type'])
        self.require(cls, f'{where}: loss type {loss["type"]!r} of {base} '
                     'is not registered')
        return LossSpec(
            key, base, d['name'], d['title'],
            bool(getattr(cls, 'requires_counts', False)),
            self.variants(f'{where}.sweep', d.get('sweep'),
                          dict(d.get('options') or {})))

    def variants(self, where: str, sweep: Any,
                 common: dict) -> Tuple[Variant, ...]:
        """A loss's settings from its ``sweep``, each with ``common``."""
        if sweep is None:  # no sweep (a child spec may drop its parent's)
            return (Variant(tuple(common.items())), )
        if isinstance(sweep, dict):
            for k, values in sweep.items():
                self.require(isinstance(values, (list, tuple)) and values,
                             f'{where}.{k}: a sweep dict maps an option to '
                             'a non-empty list of values')
            items = [dict(options=dict(zip(sweep, values)))
                     for values in itertools.product(*sweep.values())]
        else:
            self.require(isinstance(sweep, (list, tuple)) and sweep,
                         f'{where}: give a dict of option lists or a '
                         'non-empty list of variants')
            items = [x if isinstance(x, dict) and 'options' in x else
                     dict(options=x) for x in sweep]
        variants = []
        for i, item in enumerate(items):
            self.check(item, f'{where}[{i}]', ('options', ), ('tag', 'label'))
            self.require(isinstance(item['options'], dict),
                         f'{where}[{i}]: a variant is a dict')
            opts = item['options']
            tag = item.get('tag') or '-'.join(
                _tag(k, v) for k, v in opts.items())
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
    """Read and validate a study spec (with its ``full_res`` overrides);
    the arguments' paths are relative to the current folder."""
    spec_file, cwd = osp.abspath(path), os.getcwd()
    cfg = Config.fromfile(spec_file)
    if full_res and not cfg.get('full_res'):
        raise SpecError(f'{path}: no `full_res` overrides for --full-res')
    if full_res:  # merged as mmengine merges a config into its base
        cfg.merge_from_dict(cfg.full_res)
    r = _Reader(path, cfg.to_dict())
    raw = r.raw
    unknown = sorted(k for k in set(raw) - set(KEYS) if not k.startswith('_'))
    r.require(not unknown, f'unknown keys {unknown} (known: {sorted(KEYS)})')
    name = raw.get('name') or osp.splitext(osp.basename(spec_file))[0]
    work = r.work_root = (spec_path(work_root, cwd)
                          or r.resolve(raw.get('work_root'))
                          or osp.join(cwd, 'work_dirs', name))
    datasets, models, losses = (r.parts(k, read) for k, read in (
        ('datasets', r.dataset), ('models', r.model), ('losses', r.loss)))
    r.require(datasets and models and losses,
              'datasets, models and losses must not be empty')
    if data_root:
        r.require(len(datasets) == 1,
                  '--data-root needs a study with one data set')
        (key, ds), = datasets.items()
        datasets[key] = replace(ds, data_root=osp.abspath(data_root))
    seeds = r.seeds(raw.get('seeds'), 'seeds')
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
    r.require(type(bootstrap) is int and bootstrap >= 0,
              'report_bootstrap must be an integer >= 0 (resamples of the '
              f'report split; 0: off), got {bootstrap!r}')
    sched = r.check(raw.get('schedule'), 'schedule', ('base', ),
                    ('name', 'iters'))
    schedule_base = r.file(sched['base'], 'schedule.base')
    iters = sched.get('iters')
    r.require(iters is None or type(iters) is int and iters > 0,
              f'schedule.iters must be a positive integer, got {iters!r}')
    sched_name = sched.get('name')
    if not sched_name:  # mmseg's: 30k; 2400i if not whole thousands
        n = iters or int(Config.fromfile(schedule_base).train_cfg.max_iters)
        sched_name = f'{n // 1000}k' if n % 1000 == 0 else f'{n}i'
    results = (spec_path(results_dir, cwd) or r.resolve(raw.get('results_dir'))
               or osp.join(work, 'results'))
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
    """A spec (None: the paper grid) and overrides, made absolute so that a
    SLURM array task loads the same study from any folder."""
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
