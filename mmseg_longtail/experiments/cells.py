"""Cells: one training run each, expanded from a study spec.

A cell is (data set, model, loss, loss variant, seed). Its config is shared
by every seed (the seed is set by the launcher); its work dir and run name
end in ``_seed<N>``. Names follow mmseg's
``{algorithm}_{model}_{gpus}xb{batch}-{schedule}_{dataset}-{crop}`` with the
loss (and its variant tag) as the algorithm, e.g.
``ldam-s5-drw_unet-s5-d16_fcn-noaux_1xb4-30k_camvid-360x480_seed0``.
"""
import fnmatch
import functools
from dataclasses import asdict, dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from .spec import GPUS, DatasetSpec, Study, Variant


@dataclass(frozen=True)
class Cell:
    dataset: str
    model: str
    loss: str
    variant: str  # the variant's tag; '' for a loss's only setting
    seed: int

    @property
    def group(self) -> Tuple[str, str, str]:
        """The (data set, model, loss) whose variants compete."""
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


@functools.lru_cache(maxsize=None)
def dataset_facts(base: str) -> Tuple[int, Tuple[int, int]]:
    """(train batch size, crop size) of a data set base config; a base that
    lacks what cells need fails naming the key."""
    from mmengine.config import Config
    cfg = Config.fromfile(base)
    for key in ('num_classes', 'crop_size', 'class_stats_file'):
        if key not in cfg:
            raise KeyError(f'{base} defines no `{key}`, which grid cells '
                           'need (see docs/grid.md)')
    return int(cfg.train_dataloader.batch_size), tuple(cfg.crop_size)


def stem(study: Study, dataset: str, model: str, loss_name: str) -> str:
    """mmseg-style config stem of a data set, model and loss name piece."""
    ds: DatasetSpec = study.datasets[dataset]
    batch, (h, w) = dataset_facts(ds.base)
    return (f'{loss_name}_{study.models[model].file_name}_{GPUS}xb{batch}-'
            f'{study.schedule_name}_{ds.name}-{h}x{w}')


def config_stem(study: Study, cell: Cell) -> str:
    """File stem of a cell's config (no seed)."""
    loss = study.losses[cell.loss]
    return stem(study, cell.dataset, cell.model,
                loss.file_name(loss.variant(cell.variant)))


def run_name(study: Study, cell: Cell) -> str:
    """Name of a cell's work dir and run record."""
    return f'{config_stem(study, cell)}_seed{cell.seed}'


def variant_of(study: Study, cell: Cell) -> Variant:
    return study.losses[cell.loss].variant(cell.variant)


# ------------------------------------------------------------- expansion
def _order(study: Study):
    loss_rank = {lo: i for i, lo in enumerate(
        list(study.priority) + [x for x in study.losses
                                if x not in study.priority])}
    ds_rank = {d: i for i, d in enumerate(study.datasets)}
    model_rank = {m: i for i, m in enumerate(study.models)}

    def key(phase: int, seed_pos: int, cell: Cell, variant_pos: int):
        return (phase, seed_pos, ds_rank[cell.dataset], loss_rank[cell.loss],
                variant_pos, model_rank[cell.model])
    return key


def sweep_cells(study: Study) -> List[Cell]:
    """Every variant of every loss on every model and data set, with the
    study's ``seeds``: the runs that the selection compares."""
    key = _order(study)
    out = []
    for d in study.datasets:
        for m in study.models:
            for lo, loss in study.losses.items():
                for vi, v in enumerate(loss.variants):
                    for si, s in enumerate(study.seeds):
                        c = Cell(d, m, lo, v.tag, s)
                        out.append((key(0, si, c, vi), c))
    return [c for _, c in sorted(out, key=lambda x: x[0])]


def plan_cells(study: Study,
               selected: Optional[Dict[Tuple[str, str, str], str]] = None
               ) -> Tuple[List[Cell], List[Tuple[str, str, str]]]:
    """(cells, pending groups) of a study.

    The cells are the sweep (:func:`sweep_cells`), then, for each (data set,
    model, loss), its selected variant with the further seeds
    (``selected_seeds`` and the loss's ``extra_seeds``). A loss with one
    setting needs no selection; for the others ``selected`` maps the group
    to the chosen variant's tag once its sweep has finished
    (:func:`~mmseg_longtail.experiments.selection.select_variants`), and
    groups not yet selected are returned as pending.
    """
    key = _order(study)
    cells = sweep_cells(study)
    extra, pending = [], []
    for d in study.datasets:
        for m in study.models:
            for lo, loss in study.losses.items():
                seeds = study.final_seeds(lo)
                if not seeds:
                    continue
                if len(loss.variants) == 1:
                    tag = loss.variants[0].tag
                else:
                    tag = (selected or {}).get((d, m, lo))
                    if tag is None:
                        pending.append((d, m, lo))
                        continue
                vi = [v.tag for v in loss.variants].index(tag)
                for s in seeds:
                    c = Cell(d, m, lo, tag, s)
                    pos = len(study.seeds) + study.final_seeds(lo).index(s)
                    extra.append((key(1, pos, c, vi), c))
    return cells + [c for _, c in sorted(extra, key=lambda x: x[0])], pending


# ------------------------------------------------------------- selection
def split_patterns(values: Optional[Iterable[str]]) -> List[str]:
    """``['ce,pat', 'cb*']`` -> ``['ce', 'pat', 'cb*']``."""
    out: List[str] = []
    for value in values or ():
        out += [v.strip() for v in str(value).split(',') if v.strip()]
    return out


def match(key: str, patterns: Optional[Sequence[str]]) -> bool:
    """``key`` matches one of the glob ``patterns`` (none given: True)."""
    return not patterns or any(fnmatch.fnmatchcase(key, p)
                               for p in patterns)


def check_patterns(axes, where: str = '') -> None:
    """Raise a ValueError for a glob pattern that matches no key of its
    axis (``axes``: (name, patterns, keys) triples), so a typo such as
    ``--losses pta`` does not silently select nothing."""
    for axis, patterns, keys in axes:
        for p in patterns or ():
            if not any(fnmatch.fnmatchcase(k, p) for k in keys):
                raise ValueError(f'--{axis}: {p!r} matches none of '
                                 f'{where}{list(keys)}')


def filter_cells(study: Study, cells: Sequence[Cell],
                 datasets: Optional[Sequence[str]] = None,
                 models: Optional[Sequence[str]] = None,
                 losses: Optional[Sequence[str]] = None,
                 seeds: Optional[Sequence[int]] = None) -> List[Cell]:
    """Cells matching the glob patterns (none given: all); a loss pattern
    matches the loss key or ``<loss>:<variant tag>``. A pattern that
    matches nothing is an error."""
    loss_keys = list(study.losses) + [
        f'{lo}:{v.tag}' for lo, loss in study.losses.items()
        for v in loss.variants if v.tag]
    check_patterns((('datasets', datasets, study.datasets),
                    ('models', models, study.models),
                    ('losses', losses, loss_keys)), "the study's ")
    return [c for c in cells
            if match(c.dataset, datasets) and match(c.model, models)
            and (match(c.loss, losses) or (c.variant and match(
                f'{c.loss}:{c.variant}', losses)))
            and (seeds is None or c.seed in seeds)]
