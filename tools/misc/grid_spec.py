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
import os.path as osp
from typing import (Dict, Iterable, List, NamedTuple, Optional, Sequence,
                    Tuple)

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_ROOT = osp.join(REPO_ROOT, 'configs')
GRID_DIR = osp.join(CONFIG_ROOT, 'grid')


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


DATASETS: Dict[str, Dataset] = {
    'pet': Dataset('datasets/oxford_pet.py', 'oxford-pet', 'Oxford-IIIT Pet'),
    'cityscapes': Dataset('datasets/cityscapes_256x512.py', 'cityscapes',
                          'Cityscapes'),
    'nyuv2': Dataset('datasets/nyu_v2_40.py', 'nyu-v2-40', 'NYUv2'),
    'camvid': Dataset('datasets/camvid.py', 'camvid', 'CamVid'),
}
# The PAT paper's three data sets; CamVid repeats the grid on real data that
# ships with this repository's test setup.
PAPER_DATASETS = ('pet', 'cityscapes', 'nyuv2')

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

    @property
    def key(self) -> str:
        return f'{self.dataset}/{self.model}/{self.loss}'


def all_cells(datasets: Iterable[str] = None) -> List[Cell]:
    """Every cell, ordered data set, model, loss (the table order)."""
    return [
        Cell(d, m, lo) for d in (datasets or DATASETS) for m in MODELS
        for lo in LOSSES
    ]


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
                 losses: Optional[Sequence[str]] = None,
                 cells: Optional[Iterable[Cell]] = None) -> List[Cell]:
    """Cells whose keys match the glob patterns (none given: everything).

    A pattern that matches no key of its axis is an error, so a typo such as
    ``--losses pta`` does not silently select nothing.
    """
    axes = (('datasets', datasets, DATASETS), ('models', models, MODELS),
            ('losses', losses, LOSSES))
    for axis, patterns, table in axes:
        for p in patterns or ():
            if not any(fnmatch.fnmatchcase(k, p) for k in table):
                raise ValueError(f'--{axis}: {p!r} matches none of '
                                 f'{list(table)}')
    cells = all_cells() if cells is None else list(cells)
    return [
        c for c in cells if _match(c.dataset, datasets)
        and _match(c.model, models) and _match(c.loss, losses)
    ]


def config_name(cell: Cell, batch_size: int, crop_size: Sequence[int],
                dataset_name: Optional[str] = None) -> str:
    """mmseg-style file stem of a cell, e.g.
    ``pat_unet-s5-d16_fcn_1xb4-30k_camvid-360x480``."""
    h, w = crop_size
    dataset_name = dataset_name or DATASETS[cell.dataset].name
    return (f'{LOSSES[cell.loss].name}_{MODELS[cell.model].name}_'
            f'{GPUS}xb{batch_size}-{SCHEDULE_NAME}_{dataset_name}-{h}x{w}')


@functools.lru_cache(maxsize=None)
def dataset_facts(dataset_base: str) -> Tuple[int, Tuple[int, int]]:
    """(train batch size, crop size) read from a data set base config.

    ``dataset_base`` is relative to configs/_base_/ or an absolute path.
    """
    from mmengine.config import Config
    path = dataset_base if osp.isabs(dataset_base) else osp.join(
        CONFIG_ROOT, '_base_', dataset_base)
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
                  note: str = '') -> str:
    """Text of a cell's config.

    ``base_prefix`` is prepended to the ``_base_`` paths (relative to the
    ``configs/_base_`` folder): ``'../../_base_/'`` for configs/grid/<loss>/,
    an absolute folder for configs rendered elsewhere. An absolute
    ``dataset_base`` is used as it is. The data set's
    ``num_classes``, ``crop_size`` and ``class_stats_file`` reach the model
    through mmengine's ``_base_.<name>`` references (a base cannot read a
    sibling base's variables; the leaf can).
    """
    ds, model, loss = DATASETS[cell.dataset], MODELS[cell.model], LOSSES[
        cell.loss]
    bases = [model.base, dataset_base, loss.base, RUNTIME_BASE, SCHEDULE_BASE]
    base_lines = ''.join(
        f"    '{b if osp.isabs(b) else base_prefix + b}',\n" for b in bases)
    counts = ('\n            class_counts=_base_.class_stats_file,'
              if loss.counted else '')
    if model.size_divisor > 1:
        d = model.size_divisor
        preproc = (f'    # pad crops up to multiples of {d}, as the model '
                   'needs\n'
                   '    data_preprocessor=dict(\n'
                   f'        size=tuple(-(-s // {d}) * {d} for s in '
                   '_base_.crop_size)),\n')
    else:
        preproc = '    data_preprocessor=dict(size=_base_.crop_size),\n'
    header = (f'# {loss.title} loss, {model.title}, {ds.title}: one cell of '
              'the PAT paper grid\n'
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
        '    auxiliary_head=dict(num_classes=_base_.num_classes))\n')
