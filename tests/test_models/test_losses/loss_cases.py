"""Shared cases and independent reference formulas for the loss tests.

The references below are written from methods.md with explicit softmax /
one-hot arithmetic (and Python loops where that is the plainest way), on
purpose independent of the vectorised code under test.
"""
import math

import torch

import mmseg_longtail  # noqa: F401  (registers the losses)

NUM_CLASSES = 5
# one class never seen in training: every loss must clamp it to 1
COUNTS = [5000.0, 1200.0, 300.0, 20.0, 0.0]

# name -> config; every registered loss and its main variants
CASES = {
    'focal': dict(type='SoftmaxFocalLoss', gamma=2.0),
    'cb': dict(type='ClassBalancedLoss', class_counts=COUNTS, beta=0.999),
    'cbfocal': dict(
        type='ClassBalancedLoss',
        class_counts=COUNTS,
        beta=0.999,
        base='focal',
        gamma=2.0),
    'bms': dict(type='BalancedSoftmaxLoss', class_counts=COUNTS, tau=1.0),
    'ldam': dict(type='LDAMLoss', class_counts=COUNTS, max_m=0.5, s=4.0),
    'ldam_drw': dict(
        type='LDAMLoss',
        class_counts=COUNTS,
        max_m=0.5,
        s=4.0,
        drw_start_iter=0,
        drw_beta=0.999),
    'blv': dict(type='BLVLoss', class_counts=COUNTS, sigma=4.0),
    'blv_paper_uniform': dict(
        type='BLVLoss',
        class_counts=COUNTS,
        sigma=0.5,
        mode='paper',
        distribution='uniform'),
    'pat': dict(type='PATLoss', tau=2.0),
    'pat_pixel': dict(type='PATLoss', tau=2.0, normalize='pixel'),
    'pat_detach': dict(type='PATLoss', tau=5.0, detach_weight=True),
}


def build(cfg, **overrides):
    from mmseg.registry import MODELS
    cfg = dict(cfg, **overrides)
    return MODELS.build(cfg)


def make_batch(n=2, c=NUM_CLASSES, h=6, w=7, ignore_index=255, seed=0,
               dtype=torch.float32, ignore_frac=0.2):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, h, w, generator=g, dtype=torch.float64) * 2
    label = torch.randint(0, c, (n, h, w), generator=g)
    drop = torch.rand(n, h, w, generator=g) < ignore_frac
    label[drop] = ignore_index
    return logits.to(dtype), label


# ------------------------------------------------------------ references
def ref_cb_weights(counts, beta):
    n = [max(float(c), 1.0) for c in counts]
    w = [(1 - beta) / (1 - beta**c) if beta > 0 else 1.0 for c in n]
    return [x * len(w) / sum(w) for x in w]


def ref_ldam_margins(counts, max_m):
    n = [max(float(c), 1.0) for c in counts]
    return [max_m * (min(n) / c)**0.25 for c in n]


def _ce_from_probs(p, y, valid):
    """-log p_y per pixel (0 at ignored) from explicit probabilities."""
    ys = torch.where(valid, y, torch.zeros_like(y))
    onehot = torch.nn.functional.one_hot(ys, p.shape[1]).permute(0, 3, 1, 2)
    py = (p * onehot).sum(1)
    return torch.where(valid, -torch.log(py), torch.zeros_like(py)), py


def _softmax(z):
    e = torch.exp(z - z.max(1, keepdim=True).values)
    return e / e.sum(1, keepdim=True)


def ref_pixel_loss(cfg, z, y, ignore_index=255, noise=None):
    """Per-pixel loss (N, H, W) of a case config, class_weight included."""
    z = z.double()
    valid = y != ignore_index
    kind = cfg['type']
    c = z.shape[1]
    counts = cfg.get('class_counts')
    weights = None
    if kind == 'SoftmaxFocalLoss':
        ce, py = _ce_from_probs(_softmax(z), y, valid)
        loss = (1 - py)**cfg.get('gamma', 2.0) * ce
    elif kind == 'ClassBalancedLoss':
        ce, py = _ce_from_probs(_softmax(z), y, valid)
        loss = ce
        if cfg.get('base', 'ce') == 'focal':
            loss = (1 - py)**cfg.get('gamma', 2.0) * ce
        weights = ref_cb_weights(counts, cfg.get('beta', 0.9999))
    elif kind == 'BalancedSoftmaxLoss':
        n = [max(x, 1.0) for x in counts]
        logpi = torch.tensor([math.log(x / sum(n)) for x in n],
                             dtype=torch.float64)
        zz = z + cfg.get('tau', 1.0) * logpi.view(1, -1, 1, 1)
        loss, _ = _ce_from_probs(_softmax(zz), y, valid)
    elif kind == 'LDAMLoss':
        m = torch.tensor(ref_ldam_margins(counts, cfg.get('max_m', 0.5)),
                         dtype=torch.float64)
        ys = torch.where(valid, y, torch.zeros_like(y))
        onehot = torch.nn.functional.one_hot(ys, c).permute(0, 3, 1, 2)
        zz = cfg.get('s', 30.0) * (z - m.view(1, -1, 1, 1) * onehot)
        loss, _ = _ce_from_probs(_softmax(zz), y, valid)
        if _drw_active(cfg):
            weights = ref_cb_weights(counts, cfg.get('drw_beta', 0.9999))
    elif kind == 'BLVLoss':
        zz = z if noise is None else z + noise.double()
        loss, _ = _ce_from_probs(_softmax(zz), y, valid)
    elif kind == 'PATLoss':
        ce, py = _ce_from_probs(_softmax(z), y, valid)
        loss = torch.exp((py - 1) / cfg.get('tau', 2.0)) * ce
    else:
        raise KeyError(kind)
    cw = cfg.get('class_weight')
    if cw is not None:
        weights = [a * b for a, b in zip(weights or [1.0] * c, cw)]
    if weights is not None:
        wt = torch.tensor(weights, dtype=torch.float64)
        ys = torch.where(valid, y, torch.zeros_like(y))
        loss = loss * torch.where(valid, wt[ys], torch.zeros_like(loss))
    return loss


def _drw_active(cfg):
    if cfg['type'] != 'LDAMLoss' or cfg.get('drw_start_iter') is None:
        return False
    from mmengine.logging import MessageHub
    it = MessageHub.get_current_instance().get_info('iter')
    return it is not None and it >= cfg['drw_start_iter']


def ref_mean_weights(cfg):
    """Per-class weights of the denominator of 'mean' (None: count):
    class_weight, times LDAM's DRW weights when active; CB's own weights
    are not in it."""
    weights = cfg.get('class_weight')
    if _drw_active(cfg):
        drw = ref_cb_weights(cfg['class_counts'], cfg.get('drw_beta', 0.9999))
        weights = [a * b for a, b in zip(drw, weights or [1.0] * len(drw))]
    return weights


def ref_pat_mask_sums(pixel_loss, y, num_classes, class_weight=None):
    """Eq. 2 with explicit loops: the sum over present (image, class) pairs
    of the pair's summed loss / mask size, and the number of pairs
    (weighted by class_weight, as mmseg weights pixels)."""
    total, pairs = 0.0, 0.0
    for n in range(y.shape[0]):
        for c in range(num_classes):
            m = y[n] == c
            if m.any():
                total = total + pixel_loss[n][m].sum() / m.sum()
                pairs += 1.0 if class_weight is None else class_weight[c]
    return total, pairs


def ref_pat_mask_mean(pixel_loss, y, num_classes, class_weight=None):
    total, pairs = ref_pat_mask_sums(pixel_loss, y, num_classes,
                                     class_weight)
    return total / (pairs + torch.finfo(torch.float32).eps)


def ref_reduce(cfg, pixel_loss, y, ignore_index=255, reduction='mean',
               avg_non_ignore=None):
    """Reference mean / sum of a per-pixel loss for a case config."""
    if avg_non_ignore is None:
        avg_non_ignore = cfg.get('avg_non_ignore', False)
    valid = y != ignore_index
    is_mask = (cfg['type'] == 'PATLoss'
               and cfg.get('normalize', 'mask') == 'mask')
    if is_mask:
        if reduction == 'sum':
            return ref_pat_mask_sums(pixel_loss, y, NUM_CLASSES)[0]
        return ref_pat_mask_mean(pixel_loss, y, NUM_CLASSES,
                                 cfg.get('class_weight'))
    if reduction == 'sum':
        return pixel_loss.sum()
    weights = ref_mean_weights(cfg)
    if weights is None:
        denom = valid.sum() if avg_non_ignore else y.numel()
    else:
        per_pixel = [[[weights[int(v)] if ok else float(not avg_non_ignore)
                       for v, ok in zip(row, okrow)]
                      for row, okrow in zip(img, okimg)]
                     for img, okimg in zip(y.tolist(), valid.tolist())]
        denom = sum(x for img in per_pixel for row in img for x in row)
    return pixel_loss.sum() / (denom + torch.finfo(torch.float32).eps)


def draw_blv_noise(loss, like, seed):
    """The offsets ``v * r_c`` BLVLoss adds after ``torch.manual_seed(seed)``
    (their law is tested separately)."""
    torch.manual_seed(seed)
    return loss.draw_variation(like)
