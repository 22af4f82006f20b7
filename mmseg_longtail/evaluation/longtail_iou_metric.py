"""IoU metric with long-tail summaries (head / body / tail mIoU, Dice error).

A drop-in for mmseg's ``IoUMetric``: the same per-batch intersection / union
accumulation (inherited ``process``), the same per-class definitions, plus

* ``mDice`` and ``DiceErr = 1 - mean Dice`` (a fraction in [0, 1], not a
  percentage; the PAT paper reports values above 1 and so must use another,
  unstated definition);
* ``mIoU_head`` / ``mIoU_body`` / ``mIoU_tail``: mean IoU over classes
  grouped by training pixel frequency (Liu et al., CVPR 2019 use the same
  many / medium / few split for long-tailed recognition) and, with
  ``group_by=('pixel', 'image')``, also by image frequency (the number of
  training images containing the class): ``mIoU_head_imgfreq`` / ...;
* per-class precision ``I_c / P_c`` and recall ``I_c / L_c``
  (``mPrecision``, ``mRecall``), always (they need only the areas);
* optional, off by default (constructor flags): per-image mIoU and the mean
  of the worst q% images (``per_image``), Wang et al.'s class-level
  per-image mIoU^C (``per_image_class``), expected and static calibration
  error from the soft-max of the segmentor's ``seg_logits``
  (``calibration``), and a per-image bootstrap confidence interval of mIoU
  and tail mIoU (``bootstrap_samples``); definitions in
  :mod:`mmseg_longtail.evaluation.statistics`;
* a JSON file with every per-class value, written to the run's work dir
  (handed over by ``MetricWorkDirHook``) or ``json_dir``.

Per class ``c`` (areas summed over the whole evaluation set, ignore excluded):
``IoU_c = I_c / (P_c + L_c - I_c)``, ``Acc_c = I_c / L_c``,
``Dice_c = 2 I_c / (P_c + L_c)``; a class absent from both prediction and
label has ``IoU_c = NaN`` and is left out of every mean (as in mmseg).
Ignored pixels enter no statistic.
"""
import datetime
import json
import logging
import math
import os
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.logging import MessageHub, MMLogger, print_log
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS
from prettytable import PrettyTable

from mmseg_longtail.utils import (frequency_groups, load_class_counts,
                                  load_class_stats, require_stats_field)
from mmseg_longtail.utils.class_stats import COUNT_KINDS
from mmseg_longtail.utils.run_files import (METRIC_RECORD_VERSION,
                                            METRICS_DIR, write_metric_record)
from .statistics import (bootstrap_interval, calibration_errors,
                         calibration_histograms, per_class_image_iou,
                         per_image_miou, worst_mean)

GROUP_NAMES = ('head', 'body', 'tail')
# key suffix of the groups by a second (third ...) kind of count in group_by
GROUP_KEY_SUFFIX = dict(pixel='_pixfreq', image='_imgfreq')
PER_CLASS_KEYS = ('IoU', 'Acc', 'Dice', 'Fscore', 'Precision', 'Recall')
# summary keys rounded to 4 decimals (the rest: 2, as mmseg)
FINE_KEYS = ('DiceErr', 'ECE', 'SCE')


def _nanmean(values: np.ndarray) -> float:
    """Mean over non-NaN entries; NaN (no warning) when there are none."""
    values = np.asarray(values, dtype=np.float64)
    valid = ~np.isnan(values)
    return float(values[valid].mean()) if valid.any() else float('nan')


def _json_ready(value):
    """NaN/inf -> None and numpy -> Python, so the JSON is standard."""
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


@METRICS.register_module()
class LongTailIoUMetric(IoUMetric):
    """mmseg's IoU metric plus Dice error and frequency-group mIoU.

    Reported keys (percentages rounded to 2 decimals like mmseg, except
    ``DiceErr``): ``aAcc``, ``mIoU``, ``mAcc``, ``mDice``, ``DiceErr``
    (``1 - mean Dice``, fraction) and, when class statistics are given,
    ``mIoU_head``, ``mIoU_body``, ``mIoU_tail`` (groups by the first kind
    of ``group_by``) and, for a further kind, the same keys with the suffix
    ``_imgfreq`` (image frequency) or ``_pixfreq`` (pixel frequency);
    ``mPrecision`` and ``mRecall`` (= ``mAcc``) always. ``'mFscore'`` in
    ``iou_metrics`` adds ``mFscore``. Optional keys (percent, ``ECE`` /
    ``SCE`` to 4 decimals): ``mIoU_img``, ``mIoU_img_worst``
    (``per_image``); ``mIoU_img_cls`` (``per_image_class``); ``ECE``, ``SCE``
    (``calibration``); ``mIoU_ci_low``, ``mIoU_ci_high`` and, with groups,
    ``mIoU_tail_ci_low``, ``mIoU_tail_ci_high`` (``bootstrap_samples``).

    Args:
        class_stats_file (str, optional): Statistics JSON written by
            ``tools/analysis_tools/class_stats.py``; its ``pixel_counts``
            (or ``image_counts``, see ``count_type``) define the groups.
        class_counts (list | str, optional): Counts given directly (or a
            statistics path); exclusive with ``class_stats_file``.
        count_type (str): ``'pixel'`` (default) or ``'image'`` counts for
            the groups (the same as ``group_by=count_type``).
        group_by (str | tuple[str], optional): the kinds of training count
            that form head / body / tail groups, among ``'pixel'`` (pixels
            of the class) and ``'image'`` (images containing the class),
            e.g. ``('pixel', 'image')`` for both. The first kind gives the
            keys ``mIoU_head`` ... (and is ``count_type``), each further kind
            the keys ``mIoU_head_imgfreq`` ... (``'image'``) or
            ``mIoU_head_pixfreq`` ... (``'pixel'``). A further kind reads its
            counts (``image_counts`` / ``pixel_counts``) from the statistics
            file. Default: ``(count_type,)``.
        frequency_groups (dict, optional): Explicit groups,
            ``dict(head=[ids], body=[ids], tail=[ids])``, overriding the
            thresholds. Needs no counts.
        group_thresholds (tuple[float, float]): Fractions of the classes,
            sorted by count (most frequent first), ending the head and the
            body. Defaults to terciles ``(1/3, 2/3)``.
        json_dir (str, optional): Folder for the per-class JSON files.
            Default: ``<work_dir>/longtail_metrics``, the work dir that
            ``MetricWorkDirHook`` hands the metric before each evaluation
            (this package's ``default_runtime.py`` selects the hook); with
            neither, no file is written and a warning says so.
        save_json (bool): Write the JSON files. Defaults to True.
        iou_metrics (list[str]): Extra mmseg metrics; ``mIoU`` and ``mDice``
            are always computed.
        per_image (bool): Report the per-image mIoU (mean over images of
            the IoU over the classes in the image's label or prediction)
            and the mean of the worst ``worst_q`` % images. Default: False.
        worst_q (float): Percentage of images, in (0, 100], for
            ``mIoU_img_worst``. Default: 10.
        per_image_class (bool): Report ``mIoU_img_cls``, the class-level
            per-image mIoU^C of Wang et al. (NeurIPS 2023): per class, the
            mean per-image IoU over the images whose label contains the
            class (at least one non-ignored pixel of it); then the mean over
            the classes. Default: False.
        calibration (bool): Report ECE and SCE from the soft-max of each
            data sample's ``seg_logits`` (mmseg's segmentors set them).
            Default: False.
        calibration_bins (int): Equal-width confidence bins. Default: 15.
        bootstrap_samples (int): Resamples B of the per-image bootstrap
            interval of mIoU (and tail mIoU); 0 turns it off (default).
        bootstrap_level (float): Coverage of the interval, in (0, 1).
            Default: 0.95.
        bootstrap_seed (int): Seed of the resampling. Default: 0.
        **kwargs: ``ignore_index``, ``nan_to_num``, ``beta``,
            ``collect_device``, ``output_dir``, ``format_only``, ``prefix``
            as in :class:`mmseg.evaluation.IoUMetric`.
    """

    def __init__(self,
                 class_stats_file: Optional[str] = None,
                 class_counts: Optional[Union[Sequence[float], str]] = None,
                 count_type: str = 'pixel',
                 group_by: Optional[Union[str, Sequence[str]]] = None,
                 frequency_groups: Optional[Dict[str, Sequence[int]]] = None,
                 group_thresholds: Tuple[float, float] = (1 / 3, 2 / 3),
                 json_dir: Optional[str] = None,
                 save_json: bool = True,
                 iou_metrics: List[str] = ['mIoU', 'mDice'],
                 per_image: bool = False,
                 worst_q: float = 10.0,
                 per_image_class: bool = False,
                 calibration: bool = False,
                 calibration_bins: int = 15,
                 bootstrap_samples: int = 0,
                 bootstrap_level: float = 0.95,
                 bootstrap_seed: int = 0,
                 **kwargs) -> None:
        if isinstance(iou_metrics, str):
            iou_metrics = [iou_metrics]
        unknown = set(iou_metrics) - {'mIoU', 'mDice', 'mFscore'}
        if unknown:
            raise ValueError(f'iou_metrics: unsupported {sorted(unknown)}; '
                             "choose from 'mIoU', 'mDice', 'mFscore'")
        metrics = ['mIoU', 'mDice'] + [
            m for m in iou_metrics if m == 'mFscore']
        super().__init__(iou_metrics=metrics, **kwargs)

        if class_stats_file is not None and class_counts is not None:
            raise ValueError('give class_stats_file or class_counts, '
                             'not both')
        self.class_stats_file = class_stats_file
        self.group_by = self._check_group_by(group_by, count_type)
        count_type = self.count_type = self.group_by[0]
        self.class_counts: Optional[np.ndarray] = None
        # the statistics file the counts came from (for messages)
        self._stats_source = class_stats_file
        if class_stats_file is None and isinstance(class_counts,
                                                   (str, os.PathLike)):
            self._stats_source = class_counts
        if class_stats_file is not None:
            self.class_counts = load_class_counts(
                class_stats_file, kind=count_type, field='class_stats_file')
            self._stats_classes, self._stats_images = self._read_stats_meta(
                class_stats_file)
        elif class_counts is not None:
            self.class_counts = load_class_counts(
                class_counts, kind=count_type, field='class_counts')
            self._stats_classes, self._stats_images = self._read_stats_meta(
                class_counts)
        else:
            self._stats_classes = self._stats_images = None
        # the counts of each further kind of group_by, from the file
        self.extra_counts = {
            kind: self._read_extra_counts(kind)
            for kind in self.group_by[1:]
        }

        lo_hi = tuple(float(t) for t in group_thresholds)
        if len(lo_hi) != 2 or not 0 <= lo_hi[0] <= lo_hi[1] <= 1:
            raise ValueError('group_thresholds must be two fractions with '
                             f'0 <= lo <= hi <= 1, got {group_thresholds}')
        self.group_thresholds = lo_hi
        self.explicit_groups = self._check_groups(frequency_groups)
        # resolved against the data set's classes in the dataset_meta setter
        self._groups: Optional[Dict[str, List[int]]] = None
        self._extra_groups: Dict[str, Optional[Dict[str, List[int]]]] = {
            kind: None for kind in self.extra_counts}
        self.json_dir = json_dir
        self.save_json = save_json
        # (work_dir, timestamp) of the runner, from MetricWorkDirHook
        self.run_dir: Tuple[Optional[str], Optional[str]] = (None, None)
        self.per_image = self._check_flag(per_image, 'per_image')
        self.worst_q = self._check_number(worst_q, 'worst_q', 0, 100,
                                          'a percentage in (0, 100]')
        self.per_image_class = self._check_flag(per_image_class,
                                                'per_image_class')
        self.calibration = self._check_flag(calibration, 'calibration')
        self.calibration_bins = self._check_int(calibration_bins,
                                                'calibration_bins', 1)
        self.bootstrap_samples = self._check_int(bootstrap_samples,
                                                 'bootstrap_samples', 0)
        self.bootstrap_level = self._check_number(
            bootstrap_level, 'bootstrap_level', 0, 1, 'in (0, 1)',
            closed=False)
        self.bootstrap_seed = self._check_int(bootstrap_seed,
                                              'bootstrap_seed', 0)

    # ------------------------------------------------------------- set-up
    @staticmethod
    def _check_flag(value, field: str) -> bool:
        if not isinstance(value, bool):
            raise ValueError(f'{field} must be True or False, got {value!r}')
        return value

    @staticmethod
    def _check_int(value, field: str, low: int) -> int:
        if isinstance(value, bool) or not isinstance(
                value, (int, np.integer)) or value < low:
            raise ValueError(f'{field} must be an integer >= {low}, got '
                             f'{value!r}')
        return int(value)

    @staticmethod
    def _check_number(value, field: str, low: float, high: float,
                      what: str, closed: bool = True) -> float:
        ok = (not isinstance(value, bool)
              and isinstance(value, (int, float, np.number))
              and low < value and (value <= high if closed else value < high))
        if not ok:
            raise ValueError(f'{field} must be {what}, got {value!r}')
        return float(value)

    @staticmethod
    def _check_group_by(group_by, count_type) -> Tuple[str, ...]:
        if count_type not in COUNT_KINDS:
            raise ValueError(f'count_type must be one of {COUNT_KINDS}, got '
                             f'{count_type!r}')
        if group_by is None:
            return (count_type, )
        kinds = (group_by, ) if isinstance(group_by, str) else tuple(
            group_by)
        if (not kinds or len(set(kinds)) != len(kinds)
                or set(kinds) - set(COUNT_KINDS)):
            raise ValueError(f'group_by must name one or both of '
                             f'{COUNT_KINDS} once each, got {group_by!r}')
        if count_type != 'pixel' and kinds[0] != count_type:
            raise ValueError(
                f'group_by={group_by!r} and count_type={count_type!r} '
                'disagree: the first kind of group_by is the count_type of '
                'the groups mIoU_head/body/tail; set one of them')
        return kinds

    def _read_extra_counts(self, kind: str) -> np.ndarray:
        """The ``<kind>_counts`` of the statistics file, for the groups of a
        further kind of ``group_by``; the error names the file and the
        field (files written before the field lack it)."""
        source = self._stats_source
        field = ('class_stats_file' if self.class_stats_file is not None
                 else 'class_counts')
        if source is None:
            raise ValueError(
                f'LongTailIoUMetric: group_by={self.group_by} needs the '
                f'{kind} counts of a statistics file (class_stats_file, '
                'written by tools/analysis_tools/class_stats.py); '
                + ('class_counts is a list of one kind of count'
                   if self.class_counts is not None else 'none is given'))
        stats = load_class_stats(str(source), kinds=())
        values = require_stats_field(
            stats, f'{kind}_counts', str(source),
            f"LongTailIoUMetric(group_by=..., '{kind}')")
        return load_class_counts(
            values, field=f'{field} ({str(source)!r}, field {kind}_counts)')

    @staticmethod
    def _read_stats_meta(source) -> Tuple[Optional[List[str]],
                                          Optional[int]]:
        """``classes`` and ``num_images`` of a statistics file (None for
        counts given as a list, or keys the file lacks)."""
        if not isinstance(source, (str, os.PathLike)):
            return None, None
        with open(source) as f:
            stats = json.load(f)
        return stats.get('classes'), stats.get('num_images')

    @staticmethod
    def _check_groups(groups) -> Optional[Dict[str, List[int]]]:
        if groups is None:
            return None
        if not isinstance(groups, dict) or set(groups) - set(GROUP_NAMES):
            raise ValueError('frequency_groups must be a dict with keys among '
                             f'{GROUP_NAMES}, got {groups!r}')
        checked = {g: sorted(int(i) for i in groups.get(g, []))
                   for g in GROUP_NAMES}
        flat = sum(checked.values(), [])
        if len(flat) != len(set(flat)):
            raise ValueError('frequency_groups: a class id is in two groups: '
                             f'{checked}')
        return checked

    @property
    def dataset_meta(self) -> Optional[dict]:
        return self._dataset_meta

    @dataset_meta.setter
    def dataset_meta(self, dataset_meta: dict) -> None:
        # Checked here, when the evaluation loop is built, so a wrong stats
        # file fails before training starts.
        self._dataset_meta = dataset_meta
        if dataset_meta is None or 'classes' not in dataset_meta:
            return
        k = len(dataset_meta['classes'])
        self._groups = self._resolve_groups(k)
        for kind, counts in self.extra_counts.items():
            if len(counts) != k:
                raise ValueError(
                    f'group_by: the {kind}_counts of {self._stats_source!r} '
                    f'are {len(counts)}, but the data set has {k} classes')
            self._extra_groups[kind] = frequency_groups(
                counts, self.group_thresholds)
        classes = list(dataset_meta['classes'])
        names = self._stats_classes
        generic = names is None or all(
            re.fullmatch(r'class\d+', str(n)) for n in names)
        if not generic and [str(n).lower() for n in names] != [
                str(c).lower() for c in classes]:
            print_log(
                f'LongTailIoUMetric: class names in {self._stats_source} '
                f'{names} differ from the data set classes {classes}; check '
                'that the statistics belong to this data set',
                logger='current', level=logging.WARNING)

    @property
    def num_classes(self) -> int:
        return len(self.dataset_meta['classes'])

    @property
    def groups(self) -> Optional[Dict[str, List[int]]]:
        """Class ids of the head / body / tail groups, or None (no
        statistics, or no data set classes yet)."""
        return self._groups

    @property
    def groups_by(self) -> Dict[str, Optional[Dict[str, List[int]]]]:
        """The groups of each kind of ``group_by`` (the first one is
        :attr:`groups`), in ``group_by`` order; None before the data set's
        classes are known."""
        return {self.group_by[0]: self._groups, **self._extra_groups}

    def group_keys(self) -> List[Tuple[str, str, List[int]]]:
        """``(summary key, group name, class ids)`` of every group of every
        kind of ``group_by``: ``mIoU_head`` ... for the first kind, then
        ``mIoU_head_imgfreq`` / ``mIoU_head_pixfreq`` ...; empty without
        statistics."""
        keys = []
        for i, (kind, groups) in enumerate(self.groups_by.items()):
            if groups is None:
                continue
            suffix = '' if i == 0 else GROUP_KEY_SUFFIX[kind]
            keys += [(f'mIoU_{g}{suffix}', g, groups[g]) for g in GROUP_NAMES]
        return keys

    def _resolve_groups(self, k: int) -> Optional[Dict[str, List[int]]]:
        """The groups for ``k`` classes; wrong lengths or ids fail here,
        naming the field."""
        if self.explicit_groups is not None:
            bad = [i for ids in self.explicit_groups.values() for i in ids
                   if not 0 <= i < k]
            if bad:
                raise ValueError(f'frequency_groups: class ids {bad} are not '
                                 f'in 0..{k - 1}')
            return self.explicit_groups
        if self.class_counts is None:
            return None
        field = ('class_stats_file' if self.class_stats_file is not None else
                 'class_counts')
        if len(self.class_counts) != k:
            raise ValueError(f'{field} has {len(self.class_counts)} counts '
                             f'but the data set has {k} classes')
        return frequency_groups(self.class_counts, self.group_thresholds)

    # ------------------------------------------------------------ metrics
    def check_label_values(self, data_samples: Sequence[dict]) -> None:
        """Refuse labels outside ``0..C-1`` that are not ``ignore_index``.

        mmseg's ``intersect_and_union`` histograms only ``0..C-1``, so such
        pixels would vanish from every area and the metric would be wrong
        without a word. One comparison pass per label on its device.
        """
        k = self.num_classes
        for sample in data_samples:
            label = sample['gt_sem_seg']['data']
            bad = ((label >= k) | (label < 0)) & (label != self.ignore_index)
            if not bad.any():
                continue
            values = torch.unique(label[bad]).tolist()
            shown = ', '.join(str(v) for v in values[:10])
            more = f' and {len(values) - 10} more' if len(values) > 10 else ''
            source = sample.get('seg_map_path') or sample.get(
                'img_path') or 'a label'
            raise ValueError(
                f'LongTailIoUMetric: {source}: label values {shown}{more} '
                f'({int(bad.sum())} pixels) are outside the class ids '
                f'0..{k - 1} and are not ignore_index={self.ignore_index}; '
                'mmseg would drop them from the metric silently. Fix the '
                "labels (or the data set's label_map / reduce_zero_label / "
                'num_classes, the metric\'s ignore_index).')

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """mmseg's per-image areas, plus with ``calibration`` each image's
        calibration histograms (a fifth entry of its result)."""
        if not self.format_only:
            self.check_label_values(data_samples)
        start = len(self.results)
        super().process(data_batch, data_samples)
        if not self.calibration or self.format_only:
            return
        hists = []
        for sample in data_samples:
            logits = sample.get('seg_logits')
            if logits is None:
                raise ValueError(
                    'LongTailIoUMetric: calibration=True needs the '
                    "segmentor's seg_logits in the data samples, which "
                    'have none; set calibration=False')
            logits = logits['data']
            label = sample['gt_sem_seg']['data'].squeeze(0)
            if logits.shape[1:] != label.shape:
                raise ValueError(
                    f'LongTailIoUMetric: seg_logits {tuple(logits.shape)} '
                    f'and the label {tuple(label.shape)} differ in size')
            hists.append(calibration_histograms(
                logits, label, self.ignore_index, self.calibration_bins))
        self.results[start:] = [
            tuple(r) + (h, ) for r, h in zip(self.results[start:], hists)
        ]

    def per_class_metrics(self, results: list) -> Dict[str, np.ndarray]:
        """Unrounded per-class fractions and summed areas.

        Returns:
            dict with ``aAcc`` (scalar), ``IoU``, ``Acc``, ``Dice``,
            ``Precision``, ``Recall`` (and ``Fscore``) of shape (K,), and
            the areas ``area_intersect``, ``area_union``, ``area_pred``,
            ``area_label``.
        """
        columns = tuple(zip(*results))
        if len(columns) not in (4, 5):
            raise ValueError('LongTailIoUMetric: no evaluation results; was '
                             'the data set empty?')
        # float64 sums: per-image float32 counts are exact, but float32
        # totals over a large set are not
        areas = [torch.stack(c).sum(0, dtype=torch.float64)
                 for c in columns[:4]]
        out = self.total_area_to_metrics(*areas, self.metrics,
                                         self.nan_to_num, self.beta)
        inter, _, pred, label = (a.numpy() for a in areas)
        with np.errstate(invalid='ignore', divide='ignore'):
            # mmseg's mFscore definitions; undefined (0 / 0) is NaN
            for key, value in (('Precision', inter / pred),
                               ('Recall', inter / label)):
                if key not in out and self.nan_to_num is not None:
                    value = np.nan_to_num(value, nan=self.nan_to_num)
                out.setdefault(key, value)
        for name, area in zip(('intersect', 'union', 'pred', 'label'), areas):
            out[f'area_{name}'] = area.numpy()
        return out

    def image_metrics(self, results: list
                      ) -> Tuple['OrderedDict[str, float]', dict]:
        """The optional statistics: summary values (percent) and the
        sections of the JSON record, from the per-image results."""
        summary, sections = OrderedDict(), {}
        if not (self.per_image or self.per_image_class or self.calibration
                or self.bootstrap_samples):
            return summary, sections
        inter = torch.stack([r[0] for r in results]).double().cpu().numpy()
        union = torch.stack([r[1] for r in results]).double().cpu().numpy()
        if self.per_image:
            per_image = per_image_miou(inter, union)
            finite = per_image[np.isfinite(per_image)]
            summary['mIoU_img'] = (float(finite.mean()) * 100
                                   if finite.size else float('nan'))
            summary['mIoU_img_worst'] = worst_mean(per_image,
                                                   self.worst_q) * 100
            sections['per_image'] = dict(worst_q=self.worst_q,
                                         mIoU=per_image * 100)
        if self.per_image_class:
            label = torch.stack([r[3] for r in results]).double().cpu()
            iou, images = per_class_image_iou(inter, union, label.numpy())
            summary['mIoU_img_cls'] = _nanmean(iou) * 100
            sections['per_image_class'] = dict(IoU=iou * 100, images=images)
        if self.calibration:
            hist = torch.stack([r[4] for r in results]).sum(0).numpy()
            calib = calibration_errors(hist, self.calibration_bins)
            summary['ECE'] = calib['ECE'] * 100
            summary['SCE'] = calib['SCE'] * 100
            sections['calibration'] = dict(
                bins=self.calibration_bins, ECE=summary['ECE'],
                SCE=summary['SCE'], reliability=dict(
                    count=calib['count'],
                    confidence=calib['confidence'] * 100,
                    accuracy=calib['accuracy'] * 100))
        if self.bootstrap_samples:
            groups = self.groups
            tail = {'tail': groups['tail']} if groups else None
            ci = bootstrap_interval(inter, union, self.bootstrap_samples,
                                    self.bootstrap_level,
                                    self.bootstrap_seed, tail)
            for key, name in (('mIoU', 'mIoU'), ('tail', 'mIoU_tail')):
                if key in ci:
                    summary[f'{name}_ci_low'] = ci[key][0] * 100
                    summary[f'{name}_ci_high'] = ci[key][1] * 100
            sections['bootstrap'] = dict(
                samples=self.bootstrap_samples, level=self.bootstrap_level,
                seed=self.bootstrap_seed,
                mIoU=[v * 100 for v in ci['mIoU']],
                mIoU_tail=[v * 100 for v in ci['tail']] if 'tail' in ci
                else None)
        return summary, sections

    def summarize(self, per_class: Dict[str, np.ndarray]
                  ) -> 'OrderedDict[str, float]':
        """Unrounded summary numbers (percent, except ``DiceErr``)."""
        summary = OrderedDict(aAcc=float(per_class['aAcc']) * 100)
        for key in PER_CLASS_KEYS:
            if key in per_class:
                summary['m' + key] = _nanmean(per_class[key]) * 100
        summary['DiceErr'] = 1.0 - summary['mDice'] / 100
        for key, _, ids in self.group_keys():
            summary[key] = _nanmean(per_class['IoU'][ids]) * 100
        return summary

    def compute_metrics(self, results: list) -> Dict[str, float]:
        logger: MMLogger = MMLogger.get_current_instance()
        if self.format_only:
            logger.info(f'results are saved to {osp.dirname(self.output_dir)}')
            return OrderedDict()
        per_class = self.per_class_metrics(results)
        summary = self.summarize(per_class)
        extra, sections = self.image_metrics(results)
        summary.update(extra)
        self._log_table(per_class, summary, logger, sections)
        if self.save_json:
            self._write_json(per_class, summary, logger, sections)
        return OrderedDict(
            (k, round(v, 4) if k in FINE_KEYS else round(v, 2))
            for k, v in summary.items())

    # ------------------------------------------------------------ outputs
    def _log_table(self, per_class, summary, logger,
                   sections: Optional[dict] = None) -> None:
        classes = list(self.dataset_meta['classes'])
        groups = self.groups
        table = PrettyTable()
        table.add_column('Class', classes)
        counts_by = {self.count_type: self.class_counts, **self.extra_counts}
        for i, (kind, kind_groups) in enumerate(self.groups_by.items()):
            counts = counts_by[kind]
            if counts is not None and kind == 'image' and self._stats_images:
                # image frequency: the share of the images with the class
                table.add_column('train img freq %', [
                    f'{100 * n / self._stats_images:.2f}' for n in counts])
            elif counts is not None:
                freq = counts / max(counts.sum(), 1.0)
                table.add_column(f'train {kind} %',
                                 [f'{100 * f:.3f}' for f in freq])
            if kind_groups is not None:
                member = {c: g for g, ids in kind_groups.items()
                          for c in ids}
                table.add_column('group' if i == 0 else f'group ({kind})',
                                 [member.get(c, '-')
                                  for c in range(len(classes))])
        for key in PER_CLASS_KEYS:
            if key in per_class:
                table.add_column(key, np.round(per_class[key] * 100, 2))
        if 'per_image_class' in (sections or {}):
            table.add_column('img IoU', np.round(
                sections['per_image_class']['IoU'], 2))
        print_log('per class results:', logger)
        print_log('\n' + table.get_string(), logger=logger)
        if 'mIoU_img' in summary:
            print_log(
                f'per-image mIoU {summary["mIoU_img"]:.2f}, worst '
                f'{self.worst_q:g}% of the images '
                f'{summary["mIoU_img_worst"]:.2f}', logger=logger)
        if 'mIoU_img_cls' in summary:
            print_log(
                'class-level per-image mIoU (mIoU^C: per class over the '
                'images whose label has it, column img IoU) '
                f'{summary["mIoU_img_cls"]:.2f}', logger=logger)
        if 'ECE' in summary:
            print_log(
                f'calibration ({self.calibration_bins} bins): ECE '
                f'{summary["ECE"]:.4f}%, SCE {summary["SCE"]:.4f}%',
                logger=logger)
        if 'mIoU_ci_low' in summary:
            text = ', '.join(
                f'{name} [{summary[name + "_ci_low"]:.2f}, '
                f'{summary[name + "_ci_high"]:.2f}]'
                for name in ('mIoU', 'mIoU_tail')
                if name + '_ci_low' in summary)
            print_log(
                f'{100 * self.bootstrap_level:g}% bootstrap intervals '
                f'({self.bootstrap_samples} resamples of the images, seed '
                f'{self.bootstrap_seed}): {text}', logger=logger)
        if groups is None:
            print_log(
                'LongTailIoUMetric: no class statistics (class_stats_file / '
                'class_counts / frequency_groups unset), so no head/body/tail '
                'mIoU; write them with `python tools/analysis_tools/'
                'class_stats.py CONFIG --out FILE`', logger=logger)
        else:
            for i, (kind, kind_groups) in enumerate(self.groups_by.items()):
                given = i == 0 and self.explicit_groups is not None
                what = ' (given)' if given else f' by {kind} frequency'
                print_log(f'frequency groups{what} (class ids): ' + ', '.join(
                    f'{g}={kind_groups[g]}' for g in GROUP_NAMES),
                    logger=logger)

    def set_run_dir(self, work_dir: str,
                    timestamp: Optional[str] = None) -> None:
        """Where the runner keeps its files (``MetricWorkDirHook`` calls
        this before each evaluation): records go to
        ``<work_dir>/longtail_metrics`` unless ``json_dir`` is set."""
        self.run_dir = (str(work_dir), timestamp)

    def _write_json(self, per_class, summary, logger,
                    sections: Optional[dict] = None) -> Optional[str]:
        work_dir, stamp = self.run_dir
        json_dir = self.json_dir
        if json_dir is not None:
            # an explicit folder names the run (its parent when the folder
            # is ``longtail_metrics``)
            parent = osp.abspath(json_dir)
            if osp.basename(parent) == METRICS_DIR:
                parent = osp.dirname(parent)
            if work_dir is None or osp.abspath(work_dir) != parent:
                work_dir, stamp = parent, None
        elif work_dir is not None:
            json_dir = osp.join(work_dir, METRICS_DIR)
        if json_dir is None:
            print_log(
                'LongTailIoUMetric: no work dir was handed to the metric '
                "(custom_hooks: dict(type='MetricWorkDirHook')) and json_dir "
                'is unset, so the per-class JSON is not written',
                logger=logger, level=logging.WARNING)
            return None
        hub = MessageHub.get_current_instance()
        stage = hub.get_info('loop_stage') or 'eval'
        train_iter = hub.get_info('iter')
        now = datetime.datetime.now().strftime('%Y%m%d_%H%M%S')
        if stage == 'val' and train_iter is not None:
            # The hub holds the 0-based index of the last training iteration.
            name = f'val_iter{int(train_iter) + 1}'
        else:
            name = f'{stage}_{stamp or now}'
        record = dict(
            metric=type(self).__name__,
            version=METRIC_RECORD_VERSION,
            stage=stage,
            iter=None if train_iter is None else int(train_iter) + 1,
            epoch=hub.get_info('epoch'),
            run_timestamp=stamp,
            written_at=now,
            work_dir=work_dir,
            classes=list(self.dataset_meta['classes']),
            ignore_index=self.ignore_index,
            summary=summary,
            per_class={
                k: per_class[k] * 100
                for k in PER_CLASS_KEYS if k in per_class
            },
            areas={
                k[len('area_'):]: per_class[k]
                for k in ('area_intersect', 'area_union', 'area_pred',
                          'area_label')
            },
            groups=self.groups,
            group_thresholds=list(self.group_thresholds),
            count_type=self.count_type,
            train_counts=self.class_counts,
            group_by=list(self.group_by),
            groups_by=self.groups_by,
            train_counts_by={self.count_type: self.class_counts,
                             **self.extra_counts},
            class_stats_file=self.class_stats_file,
            **(sections or {}))
        # one owner of the file layout (records.py): the record, plus
        # latest.json and latest_<stage>.json pointing at it, atomically
        path = write_metric_record(json_dir, name, _json_ready(record))
        print_log(f'LongTailIoUMetric: per-class values written to {path}',
                  logger=logger)
        return path
