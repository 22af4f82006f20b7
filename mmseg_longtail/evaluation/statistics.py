"""Per-image, calibration and bootstrap statistics of ``LongTailIoUMetric``.

Pure functions on the per-image areas the metric collects (intersection and
union per image and class, ignored pixels excluded) and on per-image
calibration histograms, so that each can be checked on hand-made numbers.

* Per-image mIoU (Wang et al., `Revisiting Evaluation Metrics for Semantic
  Segmentation <https://arxiv.org/abs/2310.19252>`_, NeurIPS 2023, "mIoU^I"):
  per image, the mean IoU over the classes present in its label or its
  prediction (union > 0); then the mean over the images. (The paper's code
  averages over the classes of the label only; here a class predicted in
  an image without being labelled there counts with IoU 0.) The worst-q% value
  is the mean over the ``ceil(q/100 * n)`` images with the lowest per-image
  mIoU (at least one).
* Class-level per-image mIoU, Wang et al.'s "mIoU^C": per image ``i`` and
  class ``c`` present in the image's label (``L_ic > 0``: at least one
  non-ignored ground-truth pixel), ``IoU_ic = I_ic / U_ic``; per class the
  mean of ``IoU_ic`` over the images whose label contains ``c``; then the
  mean over the classes present in at least one label. A class only
  predicted in an image (a false-positive class) enters neither mean; a
  class in no label is left out. Every image where a class occurs weighs
  alike for that class, and every class alike, however large its objects.
* ECE (Guo et al., `On Calibration of Modern Neural Networks
  <https://arxiv.org/abs/1706.04599>`_, ICML 2017): pixels binned by the
  confidence ``max_c p_c`` into ``B`` equal-width bins of [0, 1];
  ``ECE = sum_b n_b / N |acc_b - conf_b| = sum_b |sum_{i in b} correct_i -
  sum_{i in b} conf_i| / N``.
* SCE, static calibration error (Nixon et al., `Measuring Calibration in
  Deep Learning <https://arxiv.org/abs/1904.01685>`_, CVPR-W 2019): the same
  per class over all ``p_c`` (not only the top one),
  ``SCE = 1/K sum_c sum_b |sum_{i in b} [y_i = c] - sum_{i in b} p_ic| / N``.
* Bootstrap interval (Efron's percentile bootstrap over images): ``B``
  resamples of the images with replacement; each recomputes the
  dataset-level IoU from the summed per-image intersections and unions,
  the mIoU over the classes with union > 0 and the tail mIoU; the interval
  is the ``(1 - level)/2`` and ``(1 + level)/2`` quantiles.
"""
import math
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

# resamples drawn at once (memory: chunk x images counts)
BOOTSTRAP_CHUNK = 256


def _row_nanmean(values: np.ndarray) -> np.ndarray:
    """Mean over the non-NaN entries of each row; NaN for rows without
    any (no warning)."""
    valid = ~np.isnan(values)
    count = valid.sum(-1)
    total = np.where(valid, values, 0.0).sum(-1)
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def iou_from_areas(inter: np.ndarray, union: np.ndarray) -> np.ndarray:
    """``I / U`` with NaN where ``U = 0`` (class in neither label nor
    prediction)."""
    inter = np.asarray(inter, dtype=np.float64)
    union = np.asarray(union, dtype=np.float64)
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0),
                        np.nan)


def per_image_miou(inter: np.ndarray, union: np.ndarray) -> np.ndarray:
    """(n,) per-image mIoU (fraction) from (n, K) per-image areas; NaN for
    an image without a labelled pixel."""
    return _row_nanmean(iou_from_areas(inter, union))


def per_class_image_iou(inter: np.ndarray, union: np.ndarray,
                        label: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Per class, the mean per-image IoU over the images whose label
    contains the class (the terms of mIoU^C, see the module docstring).

    Args:
        inter, union, label: (n, K) per-image intersection, union and
            label areas (ignored pixels excluded).

    Returns:
        ``(iou, images)``: (K,) mean IoU (fraction; NaN for a class in no
        label) and (K,) number of images whose label contains the class.
    """
    present = np.asarray(label, dtype=np.float64) > 0
    # union >= label area > 0 wherever the class is present
    iou = np.where(present, iou_from_areas(inter, union), 0.0)
    images = present.sum(0)
    with np.errstate(invalid='ignore', divide='ignore'):
        mean = np.where(images > 0, iou.sum(0) / np.maximum(images, 1),
                        np.nan)
    return mean, images


def worst_mean(values: np.ndarray, q: float) -> float:
    """Mean of the ``ceil(q/100 * n)`` lowest finite values (at least
    one); NaN when there are none."""
    finite = np.sort(values[np.isfinite(values)])
    if finite.size == 0:
        return float('nan')
    k = max(1, math.ceil(q / 100.0 * finite.size - 1e-9))
    return float(finite[:k].mean())


def calibration_histograms(logits: Tensor, label: Tensor, ignore_index: int,
                           bins: int) -> Tensor:
    """Per-image calibration sums, (3, (1 + K) * bins) float64 on the CPU.

    Rows: pixel count, summed probability, summed correctness; columns: the
    ``bins`` confidence bins of the top class (ECE), then ``bins`` bins per
    class of ``p_c`` (SCE). Computed on the logits' device; ignored pixels
    (and labels outside 0..K-1) are left out. The summed probabilities of
    one image are float32 (error ~1e-7 of the image's pixels), the totals
    over images float64.

    Args:
        logits: (K, H, W) scores; K = 1 is read as a sigmoid (binary) head.
        label: (H, W) labels.
    """
    if logits.shape[0] == 1:
        fg = logits.float().sigmoid()
        prob = torch.cat([1 - fg, fg])
    else:
        prob = logits.float().softmax(0)
    k = prob.shape[0]
    label = label.to(prob.device).long()
    valid = (label != ignore_index) & (label >= 0) & (label < k)
    prob = prob[:, valid]  # (K, M)
    label = label[valid]

    def binned(p: Tensor) -> Tensor:
        return (p * bins).long().clamp_(0, bins - 1)

    conf, pred = prob.max(0)
    top = binned(conf)
    offset = torch.arange(k, device=prob.device).view(-1, 1) * bins
    per_class = (binned(prob) + offset).view(-1)
    # [y = c] summed per (c, bin of p_c): only the true class's bin counts
    true_p = prob.gather(0, label.view(1, -1)).view(-1)
    true_bin = binned(true_p) + label * bins
    top_sums = (torch.bincount(top, minlength=bins),
                torch.bincount(top, weights=conf, minlength=bins),
                torch.bincount(top, weights=(pred == label).float(),
                               minlength=bins))
    size = k * bins
    class_sums = (torch.bincount(per_class, minlength=size),
                  torch.bincount(per_class, weights=prob.reshape(-1),
                                 minlength=size),
                  torch.bincount(true_bin, minlength=size))
    return torch.stack([
        torch.cat([a.double(), b.double()])
        for a, b in zip(top_sums, class_sums)
    ]).cpu()


def calibration_errors(hist: np.ndarray, bins: int) -> Dict[str, object]:
    """ECE, SCE (fractions) and the reliability diagram of the top class
    from summed :func:`calibration_histograms`."""
    hist = np.asarray(hist, dtype=np.float64)
    top, per_class = hist[:, :bins], hist[:, bins:]
    n = top[0].sum()
    k = per_class.shape[1] // bins
    if n == 0:
        nan = float('nan')
        return dict(ECE=nan, SCE=nan, count=top[0], confidence=top[0] * nan,
                    accuracy=top[0] * nan)
    with np.errstate(invalid='ignore', divide='ignore'):
        confidence = top[1] / top[0]
        accuracy = top[2] / top[0]
    return dict(
        ECE=float(np.abs(top[2] - top[1]).sum() / n),
        SCE=float(np.abs(per_class[2] - per_class[1]).sum() / (k * n)),
        count=top[0], confidence=confidence, accuracy=accuracy)


def bootstrap_interval(inter: np.ndarray,
                       union: np.ndarray,
                       samples: int,
                       level: float = 0.95,
                       seed: int = 0,
                       groups: Optional[Dict[str, Sequence[int]]] = None
                       ) -> Dict[str, Tuple[float, float]]:
    """Percentile bootstrap intervals (fractions) of the dataset-level mIoU
    and, with ``groups``, of each group's mIoU, resampling images.

    Args:
        inter, union: (n, K) per-image intersections and unions.
        samples: number of resamples B.
        level: coverage of the interval, in (0, 1).
        seed: seed of numpy's generator: the same inputs give the same
            interval.
        groups: class ids per group name (``{'tail': [..]}``).

    Returns:
        ``{'mIoU': (lo, hi), '<group>': (lo, hi), ...}``; NaN bounds where
        no resample defines the value.
    """
    inter = np.asarray(inter, dtype=np.float64)
    union = np.asarray(union, dtype=np.float64)
    n = inter.shape[0]
    rng = np.random.default_rng(seed)
    keys = ['mIoU'] + list(groups or {})
    draws = {key: [] for key in keys}
    uniform = np.full(n, 1.0 / n)
    for start in range(0, samples, BOOTSTRAP_CHUNK):
        # how often each image is drawn, one row per resample
        counts = rng.multinomial(n, uniform, size=min(BOOTSTRAP_CHUNK,
                                                      samples - start))
        iou = iou_from_areas(counts @ inter, counts @ union)
        draws['mIoU'].append(_row_nanmean(iou))
        for name, ids in (groups or {}).items():
            draws[name].append(_row_nanmean(iou[:, list(ids)]) if len(ids)
                               else np.full(len(counts), np.nan))
    tail = (1.0 - level) / 2.0
    out = {}
    for key in keys:
        values = np.concatenate(draws[key])
        values = values[np.isfinite(values)]
        out[key] = ((float('nan'), ) * 2 if values.size == 0 else tuple(
            float(v) for v in np.quantile(values, [tail, 1.0 - tail])))
    return out
