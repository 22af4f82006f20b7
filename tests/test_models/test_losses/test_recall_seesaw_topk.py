"""RecallLoss, SeesawLoss and TopKCrossEntropyLoss beyond the shared cases
of loss_cases.py: hand-computed values, the online statistics (running
recall, cumulative counts) over several batches, eval mode, checkpoint
resume, the sum over two gloo processes, analytic gradients, the top-k
selection and build-time errors."""
import math

import pytest
import torch
import torch.nn.functional as F
from loss_cases import (NUM_CLASSES, build, make_batch, ref_batch_recall,
                        ref_seesaw, ref_topk_mask)

from mmseg_longtail.models.losses.base import AVG_EPS

CLASS_WEIGHT = [1.0, 2.0, 0.5, 3.0, 1.5]


def batches(count, seed=0, **kwargs):
    """``count`` float64 batches; class 2 is missing from the second."""
    out = []
    for i in range(count):
        z, y = make_batch(seed=seed + i, dtype=torch.float64, **kwargs)
        if i == 1:
            y[y == 2] = 0
        out.append((z, y))
    return out


# ------------------------------------------------------------ RecallLoss
def test_recall_hand_computed():
    """Four pixels of class 0 (three predicted right: R = 3/4) and two of
    class 1 (none right: R = 0), one ignored pixel."""
    y = torch.tensor([[[0, 0, 0, 0, 1, 1, 255]]])
    pred = torch.tensor([0, 0, 0, 1, 0, 0, 1])
    z = 3.0 * F.one_hot(pred, 2).double().T.reshape(1, 2, 1, 7)
    ce = F.cross_entropy(z, y, reduction='none', ignore_index=255)
    want = (ce[y == 0].sum() * 0.25 + ce[y == 1].sum() * 1.0) / (7 + AVG_EPS)
    loss = build(dict(type='RecallLoss'))
    assert loss(z, y).item() == pytest.approx(want.item(), rel=1e-12)
    assert loss.loss_name == 'loss_recall'
    assert ref_batch_recall(z, y, 2) == [0.75, 0.0]


def test_recall_weights_are_constants():
    """The gradient is CE's with the recall weights held fixed."""
    z, y = make_batch(dtype=torch.float64)
    recall = torch.tensor(ref_batch_recall(z, y, NUM_CLASSES),
                          dtype=torch.float64)
    zz = z.clone().requires_grad_()
    build(dict(type='RecallLoss'))(zz, y).backward()
    zr = z.clone().requires_grad_()
    ce = F.cross_entropy(zr, y, weight=1 - recall, reduction='none',
                         ignore_index=255)
    (ce.sum() / y.numel()).backward()
    torch.testing.assert_close(zz.grad, zr.grad)


def test_recall_running_average_eval_and_resume():
    """The running recall follows a plain EMA over the training batches
    (a class absent from a batch keeps its value, the first batch sets it);
    eval mode reads it without changing it; a loss rebuilt from the
    state_dict continues exactly."""
    m = 0.3
    cfg = dict(type='RecallLoss', recall='running', momentum=m,
               class_weight=CLASS_WEIGHT)
    loss = build(cfg)
    assert set(loss.state_dict()) == {'running_recall', 'recall_seen'}
    data = batches(4)
    ema = [None] * NUM_CLASSES
    for z, y in data[:3]:
        batch = ref_batch_recall(z, y, NUM_CLASSES)
        for c in range(NUM_CLASSES):
            if (y == c).any():
                ema[c] = batch[c] if ema[c] is None else (
                    (1 - m) * ema[c] + m * batch[c])
        got = loss(z, y)
        weights = [(1 - (e or 0.0)) * w for e, w in zip(ema, CLASS_WEIGHT)]
        ce = F.cross_entropy(z, y, reduction='none', ignore_index=255)
        wt = torch.tensor(weights + [0.0], dtype=torch.float64)
        pixel = ce * wt[torch.where(y == 255, NUM_CLASSES, y)]
        mean_w = torch.tensor(CLASS_WEIGHT + [1.0], dtype=torch.float64)
        denom = mean_w[torch.where(y == 255, NUM_CLASSES, y)].sum()
        assert got.item() == pytest.approx(
            (pixel.sum() / (denom + AVG_EPS)).item(), rel=1e-6)
    assert not (data[1][1] == 2).any()  # class 2 kept its value there
    torch.testing.assert_close(loss.running_recall.double(),
                               torch.tensor(ema, dtype=torch.float64))
    # eval: no update
    state = {k: v.clone() for k, v in loss.state_dict().items()}
    loss.eval()
    loss(*data[3])
    for key, value in loss.state_dict().items():
        assert torch.equal(value, state[key]), key
    loss.train()
    # resume: rebuilt, loaded before any forward, continues identically
    resumed = build(cfg)
    resumed.load_state_dict(state)
    for z, y in data[3:] + data[:1]:
        assert torch.equal(loss(z, y), resumed(z, y))
    for key, value in loss.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    # a fresh loss (no history) gives another value
    assert not torch.equal(build(cfg)(*data[0]), loss(*data[0]))


def test_recall_never_seen_class_has_weight_one_and_no_nan():
    loss = build(dict(type='RecallLoss', recall='running'))
    z, y = make_batch(dtype=torch.float64)
    y[y == 4] = 255
    loss(z, y)
    assert loss.recall_seen.tolist() == [True] * 4 + [False]
    assert loss.running_recall[4].item() == 0.0
    y[:] = 255
    assert loss(z, y).item() == 0.0
    assert torch.isfinite(loss.running_recall).all()


# ------------------------------------------------------------ SeesawLoss
def test_seesaw_cumulative_counts_eval_and_resume():
    cfg = dict(type='SeesawLoss', p=0.8, q=2.0)
    loss = build(cfg)
    assert set(loss.state_dict()) == {'cum_counts'}
    data = batches(4)
    counts = [0] * NUM_CLASSES
    for z, y in data[:3]:
        for c in range(NUM_CLASSES):
            counts[c] += int((y == c).sum())  # 255 is never counted
        got = loss(z, y, reduction_override='sum')
        want = ref_seesaw(cfg, z, y, counts=counts).sum()
        assert got.item() == pytest.approx(want.item(), rel=1e-10)
    assert loss.cum_counts.tolist() == counts
    assert loss.cum_counts.dtype == torch.int64
    state = {k: v.clone() for k, v in loss.state_dict().items()}
    loss.eval()
    got = loss(*data[3], reduction_override='sum')
    assert got.item() == pytest.approx(
        ref_seesaw(cfg, *data[3], counts=counts).sum().item(), rel=1e-10)
    assert loss.cum_counts.tolist() == counts
    loss.train()
    resumed = build(cfg)
    resumed.load_state_dict(state)
    for z, y in data[3:] + data[:1]:
        assert torch.equal(loss(z, y), resumed(z, y))
    assert torch.equal(loss.cum_counts, resumed.cum_counts)


def test_seesaw_p_q_zero_is_cross_entropy():
    from mmseg.models.losses import CrossEntropyLoss
    z, y = make_batch()
    ours = build(dict(type='SeesawLoss', p=0.0, q=0.0, avg_non_ignore=True))
    ce = CrossEntropyLoss(avg_non_ignore=True)
    za, zb = z.clone().requires_grad_(), z.clone().requires_grad_()
    a, b = ce(za, y, ignore_index=255), ours(zb, y)
    assert torch.equal(a, b)
    a.backward()
    b.backward()
    assert torch.equal(za.grad, zb.grad)


def test_seesaw_factors_act_on_the_right_logits():
    """A pixel of the frequent class 0 with a rare class 1 logit: the
    mitigation lowers the loss; with class 1 scored above class 0 the
    compensation raises it back."""
    y = torch.zeros(1, 1, 10, dtype=torch.long)
    y[0, 0, 0] = 1  # N = (9, 1)
    z = torch.zeros(1, 2, 1, 10, dtype=torch.float64)
    ce = F.cross_entropy(z, y, reduction='none')[0, 0, 1]
    mitigated = build(dict(type='SeesawLoss', q=0.0))(
        z, y, reduction_override='none')[0, 0, 1]
    # -log(1 / (1 + (1/9)^0.8)): only the class-1 logit is scaled
    assert mitigated.item() == pytest.approx(math.log1p(9**-0.8))
    assert mitigated < ce
    z[0, 1, 0, 1] = 2.0  # s_1 / s_0 = e^2
    both = build(dict(type='SeesawLoss'))(
        z, y, reduction_override='none')[0, 0, 1]
    assert both.item() == pytest.approx(
        math.log1p(9**-0.8 * math.exp(2.0)**2 * math.exp(2.0)))


@pytest.mark.parametrize('q', [0.0, 2.0])
def test_seesaw_gradient(q):
    """With the factors held constant the gradient is that of CE on the
    adjusted logits: (softmax(z + log S) - onehot(y)) / #pixels."""
    cfg = dict(type='SeesawLoss', p=0.8, q=q)
    z, y = make_batch(dtype=torch.float64)
    zz = z.clone().requires_grad_()
    build(cfg)(zz, y).backward()
    valid = y != 255
    counts = [float((y == c).sum()) for c in range(NUM_CLASSES)]
    log_s = torch.zeros_like(z)
    sigma = torch.softmax(z, 1)
    for b, h, w in [tuple(i) for i in valid.nonzero()]:
        i = int(y[b, h, w])
        for j in range(NUM_CLASSES):
            m = (counts[j] / counts[i])**0.8 if counts[j] < counts[i] else 1
            s_i = max(float(sigma[b, i, h, w]), 0.01)
            r = float(sigma[b, j, h, w]) / s_i
            log_s[b, j, h, w] = math.log(m * (r**q if r > 1 else 1.0))
    onehot = F.one_hot(torch.where(valid, y, 0), NUM_CLASSES).permute(
        0, 3, 1, 2)
    want = (torch.softmax(z + log_s, 1) - onehot) * valid.unsqueeze(1)
    torch.testing.assert_close(zz.grad, want / y.numel())


# -------------------------------------------------- TopKCrossEntropyLoss
@pytest.mark.parametrize('per_image', [True, False])
@pytest.mark.parametrize('k', [1.0, 12.5, 30.0, 99.0])
def test_topk_selects_the_hardest(k, per_image):
    z, y = make_batch(n=3, h=8, w=9, dtype=torch.float64, seed=5)
    y[1, :5] = 255
    cfg = dict(type='TopKCrossEntropyLoss', k=k, per_image=per_image)
    zz = z.clone().requires_grad_()
    pixel = build(cfg)(zz, y, reduction_override='none')
    ce = F.cross_entropy(z, y, reduction='none', ignore_index=255)
    valid = y != 255
    picked = pixel > 0
    groups = [picked[n] for n in range(3)] if per_image else [picked]
    valids = [valid[n] for n in range(3)] if per_image else [valid]
    for sel, ok in zip(groups, valids):
        assert int(sel.sum()) == math.ceil(int(ok.sum()) * k / 100)
    assert torch.equal(picked, ref_topk_mask(cfg, ce, valid))
    torch.testing.assert_close(pixel[picked], ce[picked])
    pixel.sum().backward()
    assert (zz.grad.abs().sum(1)[~picked] == 0).all()
    assert (zz.grad.abs().sum(1)[picked] > 0).all()


def test_topk_all_pixels_is_non_ignored_cross_entropy():
    from mmseg.models.losses import CrossEntropyLoss
    z, y = make_batch(dtype=torch.float64, ignore_index=-1)
    ce = CrossEntropyLoss(avg_non_ignore=True, class_weight=CLASS_WEIGHT)
    for per_image in (True, False):
        loss = build(dict(type='TopKCrossEntropyLoss', k=100,
                          per_image=per_image, class_weight=CLASS_WEIGHT))
        assert loss(z, y, ignore_index=-1).item() == pytest.approx(
            ce(z, y, ignore_index=-1).item(), rel=1e-12)
        # 'mean' over the selection: 10 % of the pixels, sum / count
        loss = build(dict(type='TopKCrossEntropyLoss', k=10,
                          per_image=per_image))
        pixel = loss(z, y, reduction_override='none', ignore_index=-1)
        assert loss(z, y, ignore_index=-1).item() == pytest.approx(
            (pixel.sum() / (pixel > 0).sum()).item(), rel=1e-6)


def test_topk_ties_are_deterministic():
    z = torch.zeros(1, 3, 4, 4)  # every pixel the same CE
    y = torch.zeros(1, 4, 4, dtype=torch.long)
    loss = build(dict(type='TopKCrossEntropyLoss', k=25))
    a = loss(z, y, reduction_override='none')
    assert int((a > 0).sum()) == 4
    assert torch.equal(a, loss(z, y, reduction_override='none'))


# ------------------------------------------------------- errors, states
@pytest.mark.parametrize('cfg,field', [
    (dict(type='RecallLoss', recall='epoch'), 'recall'),
    (dict(type='RecallLoss', momentum=0.0), 'momentum'),
    (dict(type='RecallLoss', momentum=1.5), 'momentum'),
    (dict(type='SeesawLoss', p=-1), 'p'),
    (dict(type='SeesawLoss', q=float('nan')), 'q'),
    (dict(type='SeesawLoss', eps=0), 'eps'),
    (dict(type='TopKCrossEntropyLoss', k=0), 'k'),
    (dict(type='TopKCrossEntropyLoss', k=100.5), 'k'),
    (dict(type='TopKCrossEntropyLoss', per_image='yes'), 'per_image'),
    (dict(type='SeesawLoss', class_counts=[1, 2]), 'class_counts'),
])
def test_bad_config_names_field(cfg, field):
    with pytest.raises(ValueError, match=field):
        build(cfg)


@pytest.mark.parametrize('cfg,name', [
    (dict(type='SeesawLoss'), 'cum_counts'),
    (dict(type='RecallLoss', recall='running'), 'running_recall'),
])
def test_state_sized_by_head_and_checked(cfg, name):
    loss = build(cfg)
    loss.check_num_classes(NUM_CLASSES)  # as the plugin's heads do
    assert getattr(loss, name).shape == (NUM_CLASSES, )
    with pytest.raises(ValueError, match=f'{name} holds {NUM_CLASSES}'):
        loss.check_num_classes(NUM_CLASSES + 1)
    z, y = make_batch(c=NUM_CLASSES + 1)
    with pytest.raises(ValueError, match=f'{name} holds {NUM_CLASSES}'):
        loss(z, y)


# ------------------------------------------------- two gloo processes
def _gloo_worker(rank, port, folder):
    import torch.distributed as dist

    import mmseg_longtail  # noqa: F401
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=2)
    try:
        z, y = make_batch(seed=10 + rank)
        if rank == 1:
            y[y == 3] = 255  # class 3 only on rank 0
        out = {}
        for cfg in (dict(type='RecallLoss', recall='running'),
                    dict(type='SeesawLoss')):
            loss = build(cfg)
            out[cfg['type']] = (loss(z, y), loss.state_dict())
        torch.save(out, f'{folder}/rank{rank}.pt')
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_sum_their_counts(tmp_path):
    """Each process sees its own batch; after one training forward both
    hold the statistics of the two batches together."""
    from tests.fault_runs import free_port
    torch.multiprocessing.spawn(
        _gloo_worker, args=(free_port(), str(tmp_path)), nprocs=2)
    out = [torch.load(tmp_path / f'rank{r}.pt') for r in range(2)]
    data = [make_batch(seed=10 + r) for r in range(2)]
    data[1][1][data[1][1] == 3] = 255
    z = torch.cat([d[0] for d in data])
    y = torch.cat([d[1] for d in data])
    counts = [int((y == c).sum()) for c in range(NUM_CLASSES)]
    recall = ref_batch_recall(z, y, NUM_CLASSES)
    for rank in range(2):
        seesaw = out[rank]['SeesawLoss'][1]
        assert seesaw['cum_counts'].tolist() == counts
        state = out[rank]['RecallLoss'][1]
        torch.testing.assert_close(
            state['running_recall'].double(),
            torch.tensor(recall, dtype=torch.float64))
        assert state['recall_seen'].all()
    # one process alone would have other statistics: the sum happened
    alone = [int((data[1][1] == c).sum()) for c in range(NUM_CLASSES)]
    assert alone != counts and alone[3] == 0
    # each rank's value is its own batch weighted with the global recall
    zb, yb = data[1]
    ce = F.cross_entropy(zb, yb, reduction='none', ignore_index=255)
    w = torch.tensor([1 - r for r in recall] + [0.0])
    want = (ce * w[torch.where(yb == 255, NUM_CLASSES, yb)]).sum()
    assert out[1]['RecallLoss'][0].item() == pytest.approx(
        (want / yb.numel()).item(), rel=1e-5)


def test_runner_checkpoint_resumes_the_statistics(tmp_path):
    """Through mmengine's Runner: the checkpoint holds the buffers, and
    ``resume`` into a fresh model (empty buffers) restores them."""
    from tests.tiny_runner import build_runner, tiny_cfg, tiny_model
    losses = [dict(type='SeesawLoss'),
              dict(type='RecallLoss', recall='running', loss_weight=0.5)]

    def runner(resume):
        cfg = tiny_cfg(tmp_path, max_iters=3, checkpoint_interval=3,
                       model=tiny_model(losses))
        if resume:
            cfg.resume, cfg.load_from = True, str(tmp_path / 'iter_3.pth')
        return build_runner(cfg)

    first = runner(False)
    first.train()
    trained = first.model.decode_head.loss_decode.state_dict()
    assert trained['0.cum_counts'].sum() > 0 and trained['1.recall_seen'].any()
    second = runner(True)
    assert second.model.decode_head.loss_decode[0].cum_counts.numel() == 0
    second.train()  # loads, then stops: max_iters reached
    resumed = second.model.decode_head.loss_decode.state_dict()
    assert sorted(resumed) == sorted(trained)
    for key, value in trained.items():
        assert torch.equal(resumed[key], value), key
