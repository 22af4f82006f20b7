"""Cells: one training run each, (data set, model, loss, variant, seed),
named as mmseg names configs with the loss as the algorithm, e.g.
``ldam-s5-drw_unet-s5-d16_fcn-noaux_1xb4-30k_camvid-360x480_seed0``."""
import fnmatch
import itertools
from dataclasses import asdict, dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from .spec import GPUS, Study

Group = Tuple[str, str, str]  # (data set, model, loss): variants compete


@dataclass(frozen=True)
class Cell:
    dataset: str
    model: str
    loss: str
    variant: str  # the variant's tag; '' for a loss's only setting
    seed: int

    @property
    def group(self) -> Group:
        return self.dataset, self.model, self.loss

    @property
    def key(self) -> str:
        loss = f'{self.loss}:{self.variant}' if self.variant else self.loss
        return f'{self.dataset}/{self.model}/{loss}/seed{self.seed}'

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> 'Cell':
        return cls(dataset=str(d['dataset']), model=str(d['model']),
                   loss=str(d['loss']), variant=str(d.get('variant') or ''),
                   seed=int(d.get('seed') or 0))


def config_stem(study: Study, cell: Cell) -> str:
    """File stem of a cell's config (its seeds share it)."""
    ds, loss = study.datasets[cell.dataset], study.losses[cell.loss]
    h, w = ds.crop_size
    algo = f'{loss.name}-{cell.variant}' if cell.variant else loss.name
    return (f'{algo}_{study.models[cell.model].file_name}_{GPUS}xb'
            f'{ds.batch_size}-{study.schedule_name}_{ds.name}-{h}x{w}')


def run_name(study: Study, cell: Cell) -> str:
    """Name of a cell's work dir and run record."""
    return f'{config_stem(study, cell)}_seed{cell.seed}'


def _in_order(study: Study, cells: Iterable[Cell]) -> List[Cell]:
    """By seed, then data set, loss (priority first), variant and model."""
    datasets, models = list(study.datasets), list(study.models)
    losses = list(dict.fromkeys(list(study.priority) + list(study.losses)))

    def key(c: Cell) -> tuple:
        tags = [v.tag for v in study.losses[c.loss].variants]
        return (study.seeds_of(c.loss).index(c.seed),
                datasets.index(c.dataset), losses.index(c.loss),
                tags.index(c.variant), models.index(c.model))

    return sorted(cells, key=key)


def sweep_cells(study: Study) -> List[Cell]:
    """Every variant of every loss, model and data set with ``seeds``."""
    return _in_order(study, [
        Cell(d, m, lo, v.tag, s) for d in study.datasets
        for m in study.models for lo, loss in study.losses.items()
        for v in loss.variants for s in study.seeds
    ])


def plan_cells(study: Study, selected: Optional[Dict[Group, str]] = None
               ) -> Tuple[List[Cell], List[Group]]:
    """(cells, pending groups): the sweep, then each group's selected
    variant (``selected``: group -> tag, or the loss's only one) with its
    ``final_seeds``; groups without one are pending."""
    extra, pending = [], []
    for d, m, lo in itertools.product(study.datasets, study.models,
                                      study.losses):
        seeds, variants = study.final_seeds(lo), study.losses[lo].variants
        if not seeds:
            continue
        tag = (variants[0].tag if len(variants) == 1 else
               (selected or {}).get((d, m, lo)))
        if tag is None:
            pending.append((d, m, lo))
        else:
            extra += [Cell(d, m, lo, tag, s) for s in seeds]
    return sweep_cells(study) + _in_order(study, extra), pending


def split_patterns(values: Optional[Iterable[str]]) -> List[str]:
    """``['ce,pat', 'cb*']`` -> ``['ce', 'pat', 'cb*']``."""
    return [v.strip() for value in values or () for v in str(value).split(',')
            if v.strip()]


def match(key: str, patterns: Optional[Sequence[str]]) -> bool:
    """``key`` matches one of the glob ``patterns`` (none given: True)."""
    return not patterns or any(fnmatch.fnmatchcase(key, p)
                               for p in patterns)


def filter_cells(study: Study, cells: Sequence[Cell],
                 datasets: Optional[Sequence[str]] = None,
                 models: Optional[Sequence[str]] = None,
                 losses: Optional[Sequence[str]] = None,
                 seeds: Optional[Sequence[int]] = None) -> List[Cell]:
    """Cells matching the glob patterns (none given: all; a loss pattern
    may name ``<loss>:<tag>``); a pattern matching nothing is an error."""
    loss_keys = list(study.losses) + [
        f'{lo}:{v.tag}' for lo, loss in study.losses.items()
        for v in loss.variants if v.tag]
    for axis, patterns, keys in (('datasets', datasets, study.datasets),
                                 ('models', models, study.models),
                                 ('losses', losses, loss_keys)):
        for p in patterns or ():
            if not any(match(k, [p]) for k in keys):
                raise ValueError(f"--{axis}: {p!r} matches none of the "
                                 f"study's {list(keys)}")
    return [c for c in cells
            if match(c.dataset, datasets) and match(c.model, models)
            and (match(c.loss, losses) or (c.variant and match(
                f'{c.loss}:{c.variant}', losses)))
            and (seeds is None or c.seed in seeds)]
