"""Sweep the post-hoc logit-adjustment strength tau in one validation pass.

For a trained checkpoint, every validation image is predicted once; its
logits ``z`` (at the original size, what mmseg's metric sees) give K
predictions ``argmax(z - tau_k log pi)`` (:class:`LogitAdjustment`, the very
function the ``LogitAdjusted*`` segmentors use) and K confusion matrices.
Each matrix is scored by the config's ``LongTailIoUMetric`` (its ignore
index, head / body / tail groups and summaries; a plain ``IoUMetric`` is
replaced by a ``LongTailIoUMetric`` on the prior's counts), so tau_k's row
equals a separate evaluation of the model with ``tau = tau_k``.

``tools/analysis_tools/logit_adjust_sweep.py`` is the command line: it
prints the table, saves the plot and the JSON, and writes a config that
inherits the original and sets the best tau.
"""
import json
import os
import os.path as osp
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from mmseg_longtail.engine.checkpoint import checkpoint_safe_globals
from mmseg_longtail.models.segmentors.logit_adjustment import (
    FIELD, LogitAdjustment)
from mmseg_longtail.utils import load_class_counts

SUMMARY_KEYS = ('aAcc', 'mIoU', 'mAcc', 'mDice', 'mIoU_head', 'mIoU_body',
                'mIoU_tail')


class ConfusionSweep:
    """K confusion matrices (label x prediction), one per tau, filled from
    logits image by image.

    Args:
        adjustments: one :class:`LogitAdjustment` per tau.
        num_classes: C.
        ignore_index: label value left out (as the metric does).
    """

    def __init__(self, adjustments: Sequence[LogitAdjustment],
                 num_classes: int, ignore_index: int = 255) -> None:
        self.adjustments = list(adjustments)
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self.matrices = torch.zeros(
            len(self.adjustments), self.num_classes * self.num_classes,
            dtype=torch.int64)

    def update(self, seg_logits: torch.Tensor, gt: torch.Tensor) -> None:
        """Add one image: ``seg_logits`` (C, H, W), ``gt`` (H, W) or
        (1, H, W)."""
        c = self.num_classes
        gt = gt.reshape(seg_logits.shape[1:]).long()
        valid = gt != self.ignore_index
        label = gt[valid]
        for k, adjust in enumerate(self.adjustments):  # K taus
            pred = adjust.predict(seg_logits)[0][valid]
            self.matrices[k] += torch.bincount(
                (label * c + pred).cpu(), minlength=c * c)

    def confusion(self) -> np.ndarray:
        """(K, C, C) counts, rows labels, columns predictions."""
        c = self.num_classes
        return self.matrices.view(-1, c, c).numpy()


def areas_from_confusion(confusion: np.ndarray):
    """(intersect, union, pred, label) areas of one (C, C) matrix, as the
    float64 tensors mmseg's metric sums."""
    conf = torch.from_numpy(np.asarray(confusion, dtype=np.float64))
    intersect = conf.diagonal()
    pred = conf.sum(0)
    label = conf.sum(1)
    return intersect, pred + label - intersect, pred, label


@dataclass
class SweepResult:
    """Scores of each tau (unrounded, percent except ``DiceErr``)."""
    taus: List[float]
    summaries: List[Dict[str, float]]
    per_class_iou: List[List[float]]
    classes: List[str]
    groups: Optional[Dict[str, List[int]]]
    prior_source: str
    count_type: str
    select: str = 'mIoU'
    extra: Dict = field(default_factory=dict)

    @property
    def best_index(self) -> int:
        values = np.array([s.get(self.select, np.nan)
                           for s in self.summaries], dtype=np.float64)
        if np.isnan(values).all():
            raise ValueError(f'no tau has a {self.select} score')
        return int(np.nanargmax(values))  # first best: the smallest tau

    @property
    def best_tau(self) -> float:
        return self.taus[self.best_index]


def score_confusions(confusion: np.ndarray, metric) -> List[tuple]:
    """``(per_class, summary)`` of each (C, C) matrix, by ``metric`` (a
    ``LongTailIoUMetric`` with its ``dataset_meta`` set)."""
    scored = []
    for conf in confusion:
        per_class = metric.per_class_metrics([areas_from_confusion(conf)])
        scored.append((per_class, metric.summarize(per_class)))
    return scored


STATS_KEYS = ('class_stats_file', 'class_counts')
# where the config may name the prior's counts, in the order looked at
COUNT_FIELDS = (f'model.{FIELD}.class_counts', 'class_stats_file',
                'the val/test evaluator\'s class_stats_file / class_counts',
                'model.decode_head.loss_decode\'s class_stats_file / '
                'class_counts')


def _entries(value) -> list:
    """A config dict, or a list of them, as a list of dicts."""
    items = value if isinstance(value, (list, tuple)) else [value]
    return [item for item in items if isinstance(item, dict)]


def _config_count_fields(cfg, split: str):
    """``(source, value)`` of every field of :data:`COUNT_FIELDS` in
    ``cfg``, in that order (the evaluator of ``split`` first)."""
    la = (cfg.model.get('test_cfg') or {}).get('logit_adjust') or {}
    yield f'model.{FIELD}.class_counts', la.get('class_counts')
    yield 'class_stats_file', cfg.get('class_stats_file')
    for name in dict.fromkeys((split, 'val', 'test')):
        for evaluator in _entries(cfg.get(f'{name}_evaluator')):
            for key in STATS_KEYS:
                yield f'{name}_evaluator.{key}', evaluator.get(key)
    for head in _entries(cfg.model.get('decode_head')):
        for loss in _entries(head.get('loss_decode')):
            for key in STATS_KEYS:
                yield f'model.decode_head.loss_decode.{key}', loss.get(key)


def _prior_counts(cfg, class_counts, split: str):
    """The prior's counts and where they came from: the argument, else the
    first of :data:`COUNT_FIELDS` that the config sets."""
    if class_counts is not None:
        return class_counts, 'class_counts'
    for source, value in _config_count_fields(cfg, split):
        if value is not None:
            return value, source
    raise ValueError(
        'no class prior: the config sets none of ' + ', '.join(COUNT_FIELDS)
        + '; pass the statistics JSON of the training split with '
        '--class-counts (class_counts=...)')


def _evaluator_cfg(cfg, split: str) -> dict:
    ev = cfg.get(f'{split}_evaluator')
    if isinstance(ev, (list, tuple)):
        ev = next((e for e in ev if 'IoUMetric' in e.get('type', '')), None)
    if not ev or 'IoUMetric' not in ev.get('type', ''):
        raise ValueError(f'{split}_evaluator of the config is not an '
                         '(LongTail)IoUMetric; the sweep scores with it')
    return dict(ev)


def build_sweep_metric(evaluator_cfg: dict, counts, count_type: str,
                       dataset_meta: dict):
    """The config's ``LongTailIoUMetric`` (JSON output off), or one on the
    prior's counts in place of a plain ``IoUMetric``."""
    from mmseg.registry import METRICS
    cfg = dict(evaluator_cfg, save_json=False)
    if cfg['type'].split('.')[-1] != 'LongTailIoUMetric':
        cfg = dict(type='LongTailIoUMetric', class_counts=counts,
                   count_type=count_type, save_json=False,
                   ignore_index=evaluator_cfg.get('ignore_index', 255))
    metric = METRICS.build(cfg)
    metric.dataset_meta = dataset_meta
    return metric


def run_sweep(config: str,
              checkpoint: Optional[str],
              taus: Sequence[float],
              class_counts=None,
              count_type: str = 'pixel',
              split: str = 'val',
              device: str = 'cpu',
              select: str = 'mIoU',
              cfg_options: Optional[Dict] = None,
              progress: bool = True) -> SweepResult:
    """One pass over ``<split>_dataloader`` of ``config`` with the weights
    of ``checkpoint``, scored for every tau in ``taus``.

    Args:
        config: config file path.
        checkpoint: checkpoint to load (None: the config's initial weights,
            for tests).
        taus: the K values of tau.
        class_counts: the prior's counts (list or statistics JSON); default
            from the config (the first of :data:`COUNT_FIELDS` it sets).
            Read with :func:`~mmseg_longtail.utils.load_class_counts`.
        count_type: ``'pixel'`` or ``'image'`` counts.
        split: 'val' or 'test'.
        device: where the model runs.
        select: summary key that picks the best tau.
        cfg_options: overrides merged into the config first.
        progress: print where the counts came from and show a progress
            bar.
    """
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner, load_checkpoint
    from mmseg.registry import MODELS

    taus = [float(t) for t in taus]
    if not taus:
        raise ValueError('taus: give at least one value')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    evaluator_cfg = _evaluator_cfg(cfg, split)
    counts, source = _prior_counts(cfg, class_counts, split)
    prior_source = f'{source} {counts}' if isinstance(counts, str) else \
        source
    if progress:
        print(f'class counts ({count_type}) from {prior_source}')
    loader = Runner.build_dataloader(cfg[f'{split}_dataloader'])
    dataset = loader.dataset
    num_classes = len(dataset.metainfo['classes'])
    # checked before the model is built; errors name the field read
    values = load_class_counts(counts, num_classes, kind=count_type,
                               field=source)
    model = MODELS.build(cfg.model)
    if checkpoint is not None:
        with checkpoint_safe_globals():  # torch's safe loader
            load_checkpoint(model, checkpoint, map_location='cpu')
    model.to(device).eval()
    metric = build_sweep_metric(evaluator_cfg, counts, count_type,
                                dataset.metainfo)
    adjustments = [
        LogitAdjustment.from_counts(values, tau, count_type, num_classes,
                                    field='class_counts') for tau in taus
    ]
    sweep = ConfusionSweep(adjustments, num_classes, metric.ignore_index)
    batches = loader
    if progress:
        from tqdm import tqdm
        batches = tqdm(loader, desc=f'{split} pass', unit='batch')
    with torch.no_grad():
        for batch in batches:
            for sample in model.test_step(batch):
                sweep.update(sample.seg_logits.data,
                             sample.gt_sem_seg.data.to(device))
    scored = score_confusions(sweep.confusion(), metric)
    return SweepResult(
        taus=taus,
        summaries=[dict(summary) for _, summary in scored],
        per_class_iou=[(pc['IoU'] * 100).tolist() for pc, _ in scored],
        classes=list(dataset.metainfo['classes']),
        groups=metric.groups,
        prior_source=prior_source,
        count_type=count_type,
        select=select,
        extra=dict(config=config, checkpoint=checkpoint, split=split,
                   class_counts=counts))


def format_sweep_table(result: SweepResult) -> str:
    """One line per tau: the summaries, the best marked with ``*``."""
    keys = [k for k in SUMMARY_KEYS if k in result.summaries[0]]
    lines = [f'{"tau":>8} ' + ' '.join(f'{k:>10}' for k in keys)]
    best = result.best_index
    for i, (tau, summary) in enumerate(zip(result.taus, result.summaries)):
        mark = '*' if i == best else ' '
        lines.append(f'{tau:>7.3g}{mark} ' + ' '.join(
            f'{summary[k]:>10.2f}' for k in keys))
    lines.append(f'best tau by {result.select}: {result.best_tau:g} '
                 f'(prior: {result.prior_source}, {result.count_type} '
                 'counts)')
    return '\n'.join(lines)


def plot_sweep(result: SweepResult, path: str) -> None:
    """mIoU and head / body / tail mIoU against tau into the PNG ``path``."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    styles = dict(mIoU=('k', '-'), mIoU_head=('tab:blue', '--'),
                  mIoU_body=('tab:orange', '--'),
                  mIoU_tail=('tab:red', '--'))
    for key, (colour, line) in styles.items():
        if key in result.summaries[0]:
            ax.plot(result.taus, [s[key] for s in result.summaries],
                    color=colour, linestyle=line, marker='o', markersize=3,
                    label=key)
    ax.axvline(result.best_tau, color='grey', linewidth=0.8)
    ax.set_xlabel('tau (prediction: argmax z - tau log prior)')
    ax.set_ylabel('IoU (%)')
    ax.set_title(f'post-hoc logit adjustment, best tau {result.best_tau:g} '
                 f'by {result.select}')
    ax.legend()
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_best_config(config: str, out: str, tau: float, class_counts,
                      count_type: str = 'pixel') -> str:
    """A config that inherits ``config`` and predicts with logit
    adjustment at ``tau``: the segmentor type becomes its
    ``LogitAdjusted*`` variant, ``test_cfg.logit_adjust`` is set."""
    from mmengine.config import Config
    from mmseg.registry import MODELS
    seg_type = Config.fromfile(config).model['type']
    name = seg_type.split('.')[-1]
    adjusted = name if name.startswith('LogitAdjusted') else \
        f'LogitAdjusted{name}'
    if MODELS.get(adjusted) is None:
        raise ValueError(
            f'model.type {seg_type!r} has no registered {adjusted}; make '
            'one with mmseg_longtail.models.segmentors.'
            f'with_logit_adjustment({name})')
    base = osp.relpath(osp.abspath(config), osp.dirname(osp.abspath(out)))
    counts = class_counts if isinstance(class_counts, str) else list(
        class_counts)
    text = (
        '# Written by tools/analysis_tools/logit_adjust_sweep.py: the best\n'
        '# post-hoc logit-adjustment tau on the validation split.\n'
        f'_base_ = [{base!r}]\n'
        f'model = dict(\n    type={adjusted!r},\n'
        f'    test_cfg=dict(logit_adjust=dict(\n'
        f'        class_counts={counts!r}, count_type={count_type!r}, '
        f'tau={float(tau)!r})))\n')
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with open(out, 'w') as f:
        f.write(text)
    return out


def sweep_logit_adjustment(config: str,
                           checkpoint: str,
                           taus: Sequence[float],
                           class_counts=None,
                           count_type: str = 'pixel',
                           split: str = 'val',
                           device: str = 'cpu',
                           select: str = 'mIoU',
                           out_dir: Optional[str] = None,
                           write_config: Optional[str] = None,
                           cfg_options: Optional[Dict] = None
                           ) -> SweepResult:
    """:func:`run_sweep`, then print the table and write
    ``<out_dir>/logit_adjust_sweep.{json,png}`` and the best-tau config."""
    result = run_sweep(config, checkpoint, taus, class_counts, count_type,
                       split, device, select, cfg_options)
    print(format_sweep_table(result))
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        from mmseg_longtail.evaluation.longtail_iou_metric import \
            _json_ready
        with open(osp.join(out_dir, 'logit_adjust_sweep.json'), 'w') as f:
            json.dump(_json_ready(dict(asdict(result),
                                       best_tau=result.best_tau)), f,
                      indent=2)
        plot = osp.join(out_dir, 'logit_adjust_sweep.png')
        plot_sweep(result, plot)
        print(f'wrote {plot} and logit_adjust_sweep.json')
    if write_config:
        write_best_config(config, write_config, result.best_tau,
                          result.extra['class_counts'], count_type)
        print(f'wrote {write_config} (tau={result.best_tau:g})')
    return result
