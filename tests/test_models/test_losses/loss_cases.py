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
    'recall': dict(type='RecallLoss'),
    'recall_running': dict(type='RecallLoss', recall='running',
                           momentum=0.5),
    'seesaw': dict(type='SeesawLoss', p=0.8, q=2.0),
    'seesaw_mitigation': dict(type='SeesawLoss', p=0.8, q=0.0),
    'topk': dict(type='TopKCrossEntropyLoss', k=30.0),
    'topk_batch': dict(type='TopKCrossEntropyLoss', k=55.0, per_image=False),
}
# cases whose loss stops the gradient through a factor on purpose, so that
# the numerical derivative differs (checked analytically in their tests)
DETACHED = ('pat_detach', 'seesaw')


# stateful losses (EQLv2, EFL) are checked with the statistics GRAD_STATS,
# frozen; AUC with num_pairs above C P^2 of every batch here: all pairs
CASES.update({
    'eqlv2': dict(type='EQLv2Loss', _grad_stats=True),
    'efl': dict(type='EqualizedFocalLoss', _grad_stats=True),
    'auc_square': dict(type='AUCLoss', surrogate='square', num_pairs=10**7),
    'auc_hinge': dict(type='AUCLoss', surrogate='hinge', num_pairs=10**7),
    'auc_exp': dict(type='AUCLoss', surrogate='exp', num_pairs=10**7),
})
# accumulated (pos_grad, neg_grad): ratios 1, 0.5, 0.1, 0.025 and 0 (a
# class never positive)
GRAD_STATS = ([10.0, 4.0, 1.0, 0.5, 0.0], [10.0, 8.0, 10.0, 20.0, 5.0])


def build(cfg, **overrides):
    """Build a case; ``_grad_stats=True`` loads GRAD_STATS into the
    loss's buffers and puts it in eval mode, so that they stay as given
    (their updates are tested in test_eql_auc.py)."""
    from mmseg.registry import MODELS
    cfg = dict(cfg, **overrides)
    frozen = cfg.pop('_grad_stats', False)
    loss = MODELS.build(cfg)
    if frozen:
        loss.load_state_dict({
            name: torch.tensor(values, dtype=torch.float64)
            for name, values in zip(('pos_grad', 'neg_grad'), GRAD_STATS)
        })
        loss.eval()
    return loss


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
    elif kind == 'RecallLoss':  # a fresh loss: batch recall either way
        loss, _ = _ce_from_probs(_softmax(z), y, valid)
        weights = [1 - r for r in ref_batch_recall(z, y, c, ignore_index)]
    elif kind == 'SeesawLoss':
        loss = ref_seesaw(cfg, z, y, ignore_index)
    elif kind == 'TopKCrossEntropyLoss':
        ce, _ = _ce_from_probs(_softmax(z), y, valid)
        loss = ce * ref_topk_mask(cfg, ce, valid)
    elif kind in ('EQLv2Loss', 'EqualizedFocalLoss'):
        stats = GRAD_STATS if cfg.get('_grad_stats') else None
        loss = ref_sigmoid_terms(cfg, z, y, valid, stats).sum(1)
    elif kind == 'AUCLoss':
        loss = ref_auc_map(cfg, z, y, valid)
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


def ref_batch_recall(z, y, c, ignore_index=255):
    """Per-class recall of the argmax over the labelled pixels, counted
    pixel by pixel (0 for a class without labelled pixels)."""
    pred = z.argmax(1)
    tp, gt = [0] * c, [0] * c
    for p, t in zip(pred.reshape(-1).tolist(), y.reshape(-1).tolist()):
        if t == ignore_index:
            continue
        gt[t] += 1
        tp[t] += int(p == t)
    return [a / b if b else 0.0 for a, b in zip(tp, gt)]


def ref_seesaw(cfg, z, y, ignore_index=255, counts=None):
    """Seesaw per pixel from the paper's product form, one pixel and one
    class at a time: -log(e^z_i / (e^z_i + sum_j S_ij e^z_j)). ``counts``:
    the cumulative counts N (default: this batch's labelled pixels)."""
    p, q, eps = cfg.get('p', 0.8), cfg.get('q', 2.0), cfg.get('eps', 0.01)
    c = z.shape[1]
    if counts is None:
        counts = [int((y == k).sum()) for k in range(c)]
    n = [max(float(v), 1.0) for v in counts]
    sigma = _softmax(z)
    loss = torch.zeros(y.shape, dtype=torch.float64)
    for b, h, w in [tuple(i) for i in (y != ignore_index).nonzero()]:
        i = int(y[b, h, w])
        s_i = max(float(sigma[b, i, h, w]), eps)
        denom = math.exp(float(z[b, i, h, w]))
        for j in range(c):
            if j == i:
                continue
            m = (n[j] / n[i])**p if n[j] < n[i] else 1.0
            ratio = float(sigma[b, j, h, w]) / s_i
            comp = ratio**q if ratio > 1 else 1.0
            denom += m * comp * math.exp(float(z[b, j, h, w]))
        loss[b, h, w] = -(float(z[b, i, h, w]) - math.log(denom))
    return loss


def ref_topk_mask(cfg, ce, valid):
    """Bool mask of the ceil(k % of n) pixels of largest CE among the
    labelled pixels of each image (or of the batch), from sorted lists."""
    k, per_image = cfg.get('k', 10.0), cfg.get('per_image', True)
    groups = ([[n] for n in range(ce.shape[0])] if per_image
              else [list(range(ce.shape[0]))])
    mask = torch.zeros(ce.shape, dtype=torch.bool)
    for images in groups:
        pixels = [(float(ce[n, h, w]), (n, h, w)) for n in images
                  for h in range(ce.shape[1]) for w in range(ce.shape[2])
                  if valid[n, h, w]]
        keep = math.ceil(len(pixels) * k / 100)
        for _, where in sorted(pixels, key=lambda t: -t[0])[:keep]:
            mask[where] = True
    return mask


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
    if cfg['type'] == 'AUCLoss':  # the mean is over class pairs
        return pixel_loss.sum() / (ref_auc_pairs(y, valid, weights) +
                                   torch.finfo(torch.float32).eps)
    if cfg['type'] == 'TopKCrossEntropyLoss':
        # the mean is over the selected pixels, whose (positive) CE is
        # the only non-zero loss
        valid, avg_non_ignore = pixel_loss != 0, True
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


# ------------------------------------- EQLv2, EFL, AUC (test_eql_auc.py)
def ref_gradient_ratio(stats, c):
    """(g_c, seen_c) lists from (pos_grad, neg_grad); g = 1 where unseen."""
    pos, neg = stats if stats is not None else ([0.0] * c, [0.0] * c)
    return ([p / n if n > 0 else 1.0 for p, n in zip(pos, neg)],
            [n > 0 for n in neg])


def ref_sigmoid_terms(cfg, z, y, valid, stats=None):
    """(N, C, H, W) per-logit loss of EQLv2 / EFL from explicit sigmoid
    probabilities, one-hot targets and the statistics ``stats``; 0 at
    ignored pixels."""
    c = z.shape[1]
    p = 1 / (1 + torch.exp(-z))
    ys = torch.where(valid, y, torch.zeros_like(y))
    onehot = torch.nn.functional.one_hot(ys, c).permute(0, 3, 1, 2).double()
    ratio, seen = ref_gradient_ratio(stats, c)

    def per_class(values):
        return torch.tensor(values, dtype=torch.float64).view(1, -1, 1, 1)

    if cfg['type'] == 'EQLv2Loss':
        gamma, mu = cfg.get('gamma', 12.0), cfg.get('mu', 0.8)
        alpha = cfg.get('alpha', 4.0)
        f = [1 / (1 + math.exp(-gamma * (g - mu))) if s else 1.0
             for g, s in zip(ratio, seen)]
        w = onehot * per_class([1 + alpha * (1 - v) for v in f]) + (
            1 - onehot) * per_class(f)
        terms = -w * (onehot * torch.log(p) + (1 - onehot) * torch.log(1 - p))
    else:
        gb, s, alpha = (cfg.get('gamma_b', 2.0), cfg.get('s', 8.0),
                        cfg.get('alpha', 0.25))
        gam = per_class([gb + s * (1 - min(max(g, 0.0), 1.0))
                         for g in ratio])
        q = onehot * p + (1 - onehot) * (1 - p)
        a = 1.0 if alpha is None else onehot * alpha + (1 - onehot) * (
            1 - alpha)
        terms = a * gam / gb * (1 - q)**gam * -torch.log(q)
    return terms * valid.unsqueeze(1)


def _auc_surrogate(cfg, x):
    m = cfg.get('margin', 1.0)
    kind = cfg.get('surrogate', 'square')
    if kind == 'square':
        return (m - x)**2
    if kind == 'hinge':
        return torch.clamp(m - x, min=0)
    return torch.exp(-x)


def ref_auc_map(cfg, z, y, valid):
    """Brute force over every ordered pair of present classes (i, j) and
    every (class-i pixel, class-j pixel) pair: l(s_i(p) - s_i(q)) / (n_i
    n_j), summed onto the positive pixel p; s = softmax of the labelled
    pixels' logits."""
    c = z.shape[1]
    s = _softmax(torch.where(valid.unsqueeze(1), z, torch.zeros_like(z)))
    out = torch.zeros(y.shape, dtype=torch.float64)
    for i in range(c):
        for j in range(c):
            mi, mj = (y == i) & valid, (y == j) & valid
            if i == j or not mi.any() or not mj.any():
                continue
            pos, neg = s[:, i][mi], s[:, i][mj]
            terms = _auc_surrogate(cfg, pos[:, None] - neg[None, :])
            out[mi] += terms.sum(1) / (mi.sum() * mj.sum())
    return out


def ref_auc_pairs(y, valid, weights=None):
    """Sum over ordered pairs of present classes (i != j) of w_i."""
    present = [c for c in range(NUM_CLASSES) if ((y == c) & valid).any()]
    return sum(1.0 if weights is None else weights[i] for i in present
               for j in present if i != j)
