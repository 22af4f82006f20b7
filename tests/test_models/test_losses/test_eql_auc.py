"""EQLv2Loss, EqualizedFocalLoss and AUCLoss beyond the shared cases of
loss_cases.CASES (values, ignore, reductions, class_weight, gradcheck with
frozen statistics): the gradient statistics (against autograd of the
reference loss, training-mode updates, ignored pixels, state_dict and
resume, all-reduce over two gloo processes) and AUC's pair sampling."""
import datetime
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from loss_cases import (NUM_CLASSES, build, make_batch, ref_auc_map,
                        ref_reduce, ref_sigmoid_terms)

LOSS_BASES = Path(__file__).resolve().parents[3] / 'configs' / '_base_' / \
    'losses'
STATEFUL = {
    'eqlv2': dict(type='EQLv2Loss'),
    'eqlv2_options': dict(type='EQLv2Loss', gamma=6.0, mu=0.5, alpha=2.0),
    'efl': dict(type='EqualizedFocalLoss'),
    'efl_options': dict(type='EqualizedFocalLoss', gamma_b=0.5, s=4.0,
                        alpha=None),
}


def ref_batch_stats(cfg, z, y, stats):
    """(pos, neg) lists: |d l / d z| of the reference loss by autograd (each
    term depends on one logit), summed over the labelled pixels of class c
    (pos) and of the other classes (neg)."""
    valid = y != 255
    zz = z.double().clone().requires_grad_()
    terms = ref_sigmoid_terms(cfg, zz, y, valid, stats)
    grad = torch.autograd.grad(terms.sum(), zz)[0].abs()
    pos, neg = [], []
    for c in range(z.shape[1]):
        pos.append(float(grad[:, c][(y == c) & valid].sum()))
        neg.append(float(grad[:, c][(y != c) & valid].sum()))
    return pos, neg


def add_stats(stats, batch):
    if stats is None:
        return batch
    return tuple([a + b for a, b in zip(s, t)] for s, t in zip(stats, batch))


def assert_stats(loss, stats):
    want = [torch.tensor(v, dtype=torch.float64) for v in stats]
    torch.testing.assert_close(loss.pos_grad, want[0], rtol=1e-9, atol=0)
    torch.testing.assert_close(loss.neg_grad, want[1], rtol=1e-9, atol=0)


# ------------------------------------------------ EQLv2 / EFL statistics
@pytest.mark.parametrize('name', sorted(STATEFUL))
def test_training_steps_follow_reference(name):
    """Each step is weighted with the statistics of the steps before it
    (none at first: unit weights), then adds its own gradient
    magnitudes."""
    cfg = STATEFUL[name]
    loss = build(cfg)
    assert loss.training and loss.pos_grad.numel() == 0
    stats = None
    for seed in (0, 1, 2):
        z, y = make_batch(dtype=torch.float64, seed=seed)
        pix = ref_sigmoid_terms(cfg, z, y, y != 255, stats).sum(1)
        got = loss(z, y)
        torch.testing.assert_close(got, ref_reduce(cfg, pix, y))
        # from the second step on the statistics change the loss
        assert (stats is None) == torch.allclose(got, build(cfg)(z, y))
        stats = add_stats(stats, ref_batch_stats(cfg, z, y, stats))
        assert_stats(loss, stats)


def test_no_statistics_is_plain_sigmoid_loss():
    """Before any statistics: EQLv2 is sigmoid BCE, EFL the sigmoid focal
    loss (torch's own BCE, not the reference above)."""
    z, y = make_batch(dtype=torch.float64, ignore_frac=0.0)
    onehot = F.one_hot(y, NUM_CLASSES).permute(0, 3, 1, 2).double()
    bce = F.binary_cross_entropy_with_logits(z, onehot, reduction='none')
    eql = build(dict(type='EQLv2Loss'))
    torch.testing.assert_close(eql(z, y), bce.sum(1).mean())
    p = torch.sigmoid(z)
    q = onehot * p + (1 - onehot) * (1 - p)
    alpha_t = onehot * 0.25 + (1 - onehot) * 0.75
    focal = alpha_t * (1 - q)**2 * bce
    efl = build(dict(type='EqualizedFocalLoss'))
    torch.testing.assert_close(efl(z, y), focal.sum(1).mean())


def test_paper_mappings():
    """EQLv2: f(mu) = 1/2, so neg weight 1/2, pos weight 1 + alpha/2; EFL:
    gamma_c = gamma_b + s (1 - g), g clamped to [0, 1]."""
    z = torch.zeros(1, 3, 1, 1)
    eql = build(dict(type='EQLv2Loss', mu=0.8, alpha=4.0))
    eql.load_state_dict(dict(pos_grad=torch.tensor([0.8, 0.0, 3.0]),
                             neg_grad=torch.tensor([1.0, 2.0, 0.0])))
    pos_w, neg_w = eql.balance_weights(z)
    f0 = 1 / (1 + math.exp(12 * 0.8))  # g = 0: negatives all but off
    torch.testing.assert_close(neg_w, torch.tensor([0.5, f0, 1.0]))
    torch.testing.assert_close(pos_w, torch.tensor([3.0, 5 - 4 * f0, 1.0]))
    efl = build(dict(type='EqualizedFocalLoss', gamma_b=2.0, s=8.0))
    efl.load_state_dict(dict(pos_grad=torch.tensor([0.5, 3.0, 1.0]),
                             neg_grad=torch.tensor([1.0, 1.0, 0.0])))
    torch.testing.assert_close(efl.focusing(z), torch.tensor([6.0, 2, 2]))


@pytest.mark.parametrize('name', ['eqlv2', 'efl'])
def test_eval_mode_and_ignored_pixels_leave_statistics(name):
    cfg = STATEFUL[name]
    z, y = make_batch(dtype=torch.float64, seed=3, ignore_frac=0.4)
    loss = build(cfg)
    loss(z, y)
    before = loss.pos_grad.clone(), loss.neg_grad.clone()
    loss.eval()
    loss(*make_batch(dtype=torch.float64, seed=4))
    assert torch.equal(loss.pos_grad, before[0])
    assert torch.equal(loss.neg_grad, before[1])
    # inf / NaN logits at ignored pixels: same value and statistics, no
    # gradient there
    loss.train()
    a, b = build(cfg), build(cfg)
    zz = z.clone()
    zz[:, 0][y == 255] = float('inf')
    zz[:, 1][y == 255] = float('nan')
    zz.requires_grad_()
    out = b(zz, y)
    torch.testing.assert_close(out, a(z, y), rtol=0, atol=0)
    out.backward()
    assert torch.isfinite(zz.grad).all()
    assert (zz.grad.permute(1, 0, 2, 3)[:, y == 255] == 0).all()
    assert torch.equal(a.pos_grad, b.pos_grad)
    assert torch.equal(a.neg_grad, b.neg_grad)
    # all ignored: nothing accumulates
    c = build(cfg)
    assert c(z, torch.full_like(y, 255)).item() == 0
    assert (c.pos_grad == 0).all() and (c.neg_grad == 0).all()


@pytest.mark.parametrize('name', ['eqlv2', 'efl'])
def test_state_dict_resume_continues_identically(name, tmp_path):
    cfg = STATEFUL[name]
    batches = [make_batch(seed=s) for s in range(4)]
    ref = build(cfg)
    for z, y in batches[:2]:
        ref(z, y)
    state = ref.state_dict()
    assert set(state) == {'pos_grad', 'neg_grad'}
    torch.save(state, tmp_path / 'loss.pth')
    resumed = build(cfg)  # fresh: empty buffers take the saved size
    resumed.load_state_dict(torch.load(tmp_path / 'loss.pth',
                                       weights_only=True))
    fresh = build(cfg)
    for z, y in batches[2:]:
        want = ref(z, y)
        assert torch.equal(resumed(z, y), want)
        assert not torch.equal(fresh(z, y), want)
    assert torch.equal(resumed.pos_grad, ref.pos_grad)
    assert torch.equal(resumed.neg_grad, ref.neg_grad)
    # statistics of another class count are refused, naming the buffer
    z, y = make_batch(c=NUM_CLASSES + 1)
    with pytest.raises(ValueError, match='pos_grad'):
        resumed(z, y)


def _all_reduce_worker(rank, world, init_file):
    import torch.distributed as dist
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'file://{init_file}',
                            rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=120))
    try:
        for name in ('eqlv2', 'efl'):
            cfg = STATEFUL[name]
            loss = build(cfg)
            for step in range(2):
                z, y = make_batch(dtype=torch.float64, seed=10 * step + rank)
                loss(z, y)
            # every process holds the statistics of both processes' batches
            stats = None
            for step in range(2):
                batch = None
                for r in range(world):
                    z, y = make_batch(dtype=torch.float64, seed=10 * step + r)
                    batch = add_stats(batch, ref_batch_stats(cfg, z, y, stats))
                stats = add_stats(stats, batch)
            assert_stats(loss, stats)
    finally:
        dist.destroy_process_group()


def test_statistics_all_reduced_over_two_gloo_processes(tmp_path):
    import mmseg_longtail  # noqa: F401
    torch.multiprocessing.spawn(
        _all_reduce_worker, args=(2, str(tmp_path / 'rendezvous')),
        nprocs=2, join=True)


@pytest.mark.parametrize('name,types', [
    ('eqlv2', ['EQLv2Loss']),
    ('equalized_focal', ['EqualizedFocalLoss']),
    ('auc', ['CrossEntropyLoss', 'AUCLoss']),
])
def test_base_config_trains_and_checkpoints_statistics(name, types,
                                                       tmp_path):
    """Each base config trains a tiny model with mmengine's runner; the
    checkpoint holds the gradient statistics of the whole run."""
    from mmengine.config import Config

    from tests.tiny_runner import build_runner, tiny_cfg, tiny_model
    loss = Config.fromfile(str(LOSS_BASES / f'{name}.py')).loss_decode
    assert [c['type'] for c in (loss if isinstance(loss, list)
                                else [loss])] == types
    runner = build_runner(tiny_cfg(tmp_path, max_iters=3,
                                   model=tiny_model(loss),
                                   checkpoint_interval=3))
    runner.train()
    logged = [k for k in runner.message_hub.log_scalars
              if k.startswith('train/decode.loss_')]
    assert len(logged) == len(types)
    for key in logged:
        assert math.isfinite(runner.message_hub.get_scalar(key).current())
    state = torch.load(tmp_path / 'iter_3.pth', map_location='cpu',
                       weights_only=False)['state_dict']
    if name != 'auc':
        loss_module = runner.model.decode_head.loss_decode
        for buf in ('pos_grad', 'neg_grad'):
            saved = state[f'decode_head.loss_decode.{buf}']
            assert saved.shape == (5, ) and (saved > 0).any()
            assert torch.equal(saved, getattr(loss_module, buf))


# ------------------------------------------------------------------ AUC
def test_auc_sampled_equals_exact_with_one_pixel_per_class():
    """One labelled pixel per class: every draw of class c is that pixel,
    so the sampled loss is the exact one (a draw of another class's or an
    ignored pixel would change it)."""
    z, _ = make_batch(n=1, c=3, h=3, w=4, dtype=torch.float64, seed=5)
    y = torch.full((1, 3, 4), 255)
    y[0, 0, 1], y[0, 2, 3], y[0, 1, 0] = 0, 1, 2
    exact = build(dict(type='AUCLoss', num_pairs=10**6))(z, y)
    sampled = build(dict(type='AUCLoss', num_pairs=100))  # 3 * 12^2 > 100
    torch.testing.assert_close(sampled(z, y), exact)
    want = ref_auc_map(dict(surrogate='square'), z, y, y != 255).sum() / 6
    torch.testing.assert_close(exact, want)


@pytest.mark.parametrize('surrogate', ['square', 'hinge', 'exp'])
def test_auc_sampled_is_unbiased(surrogate):
    z, y = make_batch(n=1, h=4, w=4, dtype=torch.float64, seed=6,
                      ignore_frac=0.3)
    exact = build(dict(type='AUCLoss', surrogate=surrogate,
                       num_pairs=10**6))(z, y)
    loss = build(dict(type='AUCLoss', surrogate=surrogate, num_pairs=250,
                      seed=0))  # 10 draws per class pair
    values = torch.stack([loss(z, y) for _ in range(400)])
    assert values.std() > 0  # sampled, not exact
    error = (values.mean() - exact).abs()
    assert error < 4 * values.std() / math.sqrt(len(values))


def test_auc_sampled_gradient_and_default_budget():
    """Default num_pairs (the number of logits) samples here; the sampled
    estimate is differentiable (gradcheck with the draws fixed)."""
    z, y = make_batch(n=1, h=3, w=4, dtype=torch.float64, seed=7)
    loss = build(dict(type='AUCLoss'))
    exact = build(dict(type='AUCLoss', num_pairs=10**6))(z, y)

    def sampled(x):
        torch.manual_seed(0)
        return loss(x, y)

    assert torch.equal(sampled(z), sampled(z))
    assert not torch.allclose(sampled(z), exact)
    torch.manual_seed(1)
    assert not torch.equal(loss(z, y), sampled(z))
    assert torch.autograd.gradcheck(
        sampled, (z.clone().requires_grad_(), ), eps=1e-6, atol=1e-6)


def test_auc_seeded_draws_resume():
    z, y = make_batch(seed=8)
    cfg = dict(type='AUCLoss', num_pairs=500, seed=3)
    a, b = build(cfg), build(cfg)
    first = a(z, y)
    torch.manual_seed(123)  # the private generator ignores torch's
    assert torch.equal(b(z, y), first)
    assert not torch.equal(a(z, y), first)  # a fresh draw at each call
    assert not torch.equal(build(dict(cfg, seed=4))(z, y), first)
    state = a.state_dict()
    assert state['_extra_state'] == dict(seeded_calls=2)
    resumed = build(cfg)
    resumed.load_state_dict(state)
    assert torch.equal(resumed(z, y), a(z, y))


def test_auc_fewer_than_two_classes_is_zero():
    z, y = make_batch(seed=9)
    y = torch.where(y == 255, 255, 2)
    for num_pairs in (None, 10**7):
        zz = z.clone().requires_grad_()
        out = build(dict(type='AUCLoss', num_pairs=num_pairs))(zz, y)
        out.backward()
        assert out.item() == 0 and (zz.grad == 0).all()


def test_auc_num_pairs_below_one_draw_names_the_field():
    z, y = make_batch()
    with pytest.raises(ValueError, match='num_pairs=10 .* 25'):
        build(dict(type='AUCLoss', num_pairs=10))(z, y)


@pytest.mark.parametrize('cfg,field', [
    (dict(type='EQLv2Loss', gamma=-1.0), 'gamma'),
    (dict(type='EQLv2Loss', alpha=float('inf')), 'alpha'),
    (dict(type='EQLv2Loss', mu=float('nan')), 'mu'),
    (dict(type='EqualizedFocalLoss', gamma_b=0.0), 'gamma_b'),
    (dict(type='EqualizedFocalLoss', s=-2.0), 's must'),
    (dict(type='EqualizedFocalLoss', alpha=1.5), 'alpha'),
    (dict(type='AUCLoss', surrogate='logistic'), 'surrogate'),
    (dict(type='AUCLoss', margin=0.0), 'margin'),
    (dict(type='AUCLoss', num_pairs=0), 'num_pairs'),
    (dict(type='AUCLoss', num_pairs=2.5), 'num_pairs'),
    (dict(type='AUCLoss', seed=-1), 'seed'),
    (dict(type='EQLv2Loss', class_counts=[1, 2]), 'class_counts'),
])
def test_bad_config_names_field(cfg, field):
    with pytest.raises(ValueError, match=field):
        build(cfg)
