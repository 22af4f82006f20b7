"""Training-step time and size of the models of the comparison.

Builds each ``configs/_base_/models/<name>.py`` (SyncBN made BN, as a
single process computes the same), then times, on random data,

* one training step: ``model.loss`` (decode + auxiliary heads) + backward,
* one inference: ``model.predict`` in whole mode (``infer=False`` skips it),

and prints the median and the minimum over ``repeats`` runs after
``warmup`` runs, with the number of trainable parameters, as a Markdown
table (plus the load average: on a shared machine, compare minima).

``tools/analysis_tools/benchmark_models.py`` is the command line of
:func:`benchmark_models`. :func:`benchmark_unetpp_pruning` times UNet++
``L^1..L^{L-1}`` (the TMI paper's pruned networks) against each other.
"""
import os.path as osp
import statistics
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

DEFAULT_MODELS = ['unet', 'attunet', 'unetpp', 'deeplabv3', 'deeplabv3plus']


def sync_bn_to_bn(cfg: Any) -> Any:
    """Copy of a config with every SyncBN made BN (SyncBN needs a process
    group on some devices; in one process both compute the same)."""
    if isinstance(cfg, dict):
        out = {k: sync_bn_to_bn(v) for k, v in cfg.items()}
        if out.get('type') == 'SyncBN':
            out['type'] = 'BN'
        return out
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(sync_bn_to_bn(v) for v in cfg)
    return cfg


def build_model(path: str,
                num_classes: int,
                decode_head: Optional[dict] = None) -> torch.nn.Module:
    """The model of a base config with ``num_classes`` classes, BN for
    SyncBN, weights initialised; ``decode_head`` updates the decode head's
    config."""
    from mmengine.config import Config, ConfigDict
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')  # as the runner does (default_scope)
    cfg = Config.fromfile(path).model.to_dict()
    cfg['decode_head'].update(decode_head or {})
    for head in ('decode_head', 'auxiliary_head'):
        if cfg.get(head):
            cfg[head]['num_classes'] = num_classes
    ceco = cfg['decode_head'].get('ceco_cfg')
    if ceco is not None and ceco.get('class_counts') is None:
        ceco['class_counts'] = [1] * num_classes  # uniform: timing only
    model = MODELS.build(ConfigDict(sync_bn_to_bn(cfg)))
    model.init_weights()
    return model


def _elapsed_ms(fn: Callable[[], Any], device: str) -> float:
    """Wall time of one call of ``fn`` in ms (synchronised on CUDA)."""
    if device.startswith('cuda'):
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.startswith('cuda'):
        torch.cuda.synchronize()
    return (time.perf_counter() - start) * 1e3


def time_ms(fn: Callable[[], None], repeats: int, warmup: int,
            device: str) -> Tuple[float, float]:
    """Median and minimum wall time of ``fn`` in ms (the minimum is the
    least disturbed by other load on a shared machine)."""
    for _ in range(warmup):
        fn()
    times = [_elapsed_ms(fn, device) for _ in range(repeats)]
    return statistics.median(times), min(times)


def benchmark(path: str,
              shape: Sequence[int],
              num_classes: int,
              repeats: int = 3,
              warmup: int = 1,
              infer: bool = True,
              device: str = 'cpu') -> Dict[str, float]:
    """Parameters and step times of the model of one base config.

    Returns:
        dict with ``params``, ``train_ms``, ``train_min_ms`` and, with
        ``infer``, ``infer_ms``, ``infer_min_ms``.
    """
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    model = build_model(path, num_classes).to(device)
    n, c, h, w = shape
    gen = torch.Generator().manual_seed(0)
    inputs = torch.randn(n, c, h, w, generator=gen).to(device)
    samples = []
    for _ in range(n):
        sample = SegDataSample(metainfo=dict(
            img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w)))
        label = torch.randint(0, num_classes, (1, h, w), generator=gen)
        sample.gt_sem_seg = PixelData(data=label.to(device))
        samples.append(sample)

    def train_step():
        model.zero_grad(set_to_none=True)
        losses = model.loss(inputs, samples)
        sum(v for k, v in losses.items() if 'loss' in k).backward()

    def predict():
        with torch.no_grad():
            model.predict(inputs, samples)

    model.train()
    result = dict(
        params=sum(p.numel() for p in model.parameters() if p.requires_grad))
    result['train_ms'], result['train_min_ms'] = time_ms(
        train_step, repeats, warmup, device)
    if infer:
        model.eval()
        result['infer_ms'], result['infer_min_ms'] = time_ms(
            predict, repeats, warmup, device)
    return result


def format_table(rows: List[Dict], infer: bool) -> str:
    """The Markdown table of :func:`benchmark` results (with ``name``)."""
    head = ('| model | params (M) | train step fwd+bwd (ms), median | '
            'min |')
    rule = '|---|---:|---:|---:|'
    if infer:
        head += ' inference (ms), median | min |'
        rule += '---:|---:|'
    lines = [head, rule]
    for r in rows:
        line = (f"| {r['name']} | {r['params'] / 1e6:.2f} | "
                f"{r['train_ms']:.0f} | {r['train_min_ms']:.0f} |")
        if infer:
            line += f" {r['infer_ms']:.0f} | {r['infer_min_ms']:.0f} |"
        lines.append(line)
    return '\n'.join(lines)


def benchmark_models(config_dir: str,
                     models: Sequence[str] = tuple(DEFAULT_MODELS),
                     shape: Sequence[int] = (2, 3, 256, 512),
                     num_classes: int = 19,
                     repeats: int = 3,
                     warmup: int = 1,
                     threads: Optional[int] = None,
                     infer: bool = True,
                     device: str = 'cpu') -> List[Dict]:
    """Benchmark ``<config_dir>/<name>.py`` for each name of ``models``.

    Each model's result goes to stderr as it is done; the setup line and
    the Markdown table go to stdout at the end.

    Args:
        config_dir: folder of the model base configs
            (``configs/_base_/models`` of the repository).
        models: base config names, without ``.py``.
        shape: input shape (N, C, H, W).
        num_classes: classes of the decode and auxiliary heads.
        repeats: timed runs after ``warmup`` untimed ones.
        warmup: untimed runs first.
        threads: torch threads (None: torch's default).
        infer: also time ``model.predict``.
        device: torch device.

    Returns:
        one :func:`benchmark` dict per model, with its ``name``.
    """
    from mmengine.logging import MMLogger

    # the current logger: keeps init_weights' per-parameter INFO lines out
    MMLogger.get_instance('benchmark_models', log_level='WARNING')
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    rows = []
    for name in models:
        res = benchmark(osp.join(config_dir, f'{name}.py'), shape, num_classes,
                        repeats, warmup, infer, device)
        res['name'] = name
        rows.append(res)
        print(f'{name}: {res}', file=sys.stderr, flush=True)
    n, c, h, w = shape
    print(f'\nInput {n}x{c}x{h}x{w}, {num_classes} classes, '
          f'device {device}, {torch.get_num_threads()} threads, '
          f'{repeats} runs after {warmup} warm-up, '
          f'torch {torch.__version__}\n')
    print(format_table(rows, infer))
    return rows


def conv_macs(model: torch.nn.Module, fn: Callable[[], Any]) -> int:
    """Multiply-accumulates of the ``Conv2d`` layers of ``model`` that
    ``fn()`` runs (forward hooks; norms, activations, resizes and
    concatenations, a few per cent at most, are not counted)."""
    total = [0]

    def count(module, args, out):
        # each output value is a dot product over in/groups * kh * kw
        total[0] += out.numel() * module.weight[0].numel()

    hooks = [
        m.register_forward_hook(count) for m in model.modules()
        if isinstance(m, torch.nn.Conv2d)
    ]
    try:
        fn()
    finally:
        for hook in hooks:
            hook.remove()
    return total[0]


def benchmark_unetpp_pruning(config: str,
                             shape: Sequence[int] = (1, 3, 256, 512),
                             num_classes: int = 19,
                             repeats: int = 5,
                             warmup: int = 1,
                             threads: Optional[int] = None,
                             device: str = 'cpu') -> List[Dict]:
    """Inference cost of UNet++ ``L^d`` for every ``d`` (Zhou et al., TMI
    2019): the head of ``config`` (a ``UNetPlusPlusHead`` base) with deep
    supervision, ``prune_level = d``, in eval mode.

    For each ``d`` (the last is the whole network; ``prune_level=None``
    computes the same): decoder nodes run, conv MACs of the head, the head's
    forward time on fixed backbone features, and the whole network's
    (backbone + head) forward time; median and minimum over ``repeats``
    runs after ``warmup``, the depths taken in turn within each run.
    Prints a Markdown table; returns its rows
    (``depth``, ``nodes``, ``head_macs``, ``head_ms``, ``head_min_ms``,
    ``model_ms``, ``model_min_ms``) and, in the setup line, the backbone's
    conv MACs (the same for every ``d``: pruning is the head's).
    """
    from mmengine.logging import MMLogger

    # the current logger: keeps init_weights' per-parameter INFO lines out
    MMLogger.get_instance('benchmark_unetpp_pruning', log_level='WARNING')
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model(config, num_classes,
                        dict(deep_supervision=True)).to(device).eval()
    head = model.decode_head
    gen = torch.Generator().manual_seed(0)
    inputs = torch.randn(*shape, generator=gen).to(device)
    nodes: List[str] = []
    hooks = [
        node.register_forward_hook(
            lambda module, args, out, key=key: nodes.append(key))
        for key, node in head.nodes.items()
    ]
    depths = list(range(1, head.num_levels))
    rows = []
    with torch.no_grad():
        feats = model.extract_feat(inputs)
        backbone_macs = conv_macs(model.backbone,
                                  lambda: model.extract_feat(inputs))
        for depth in depths:
            head.prune_level = depth
            nodes.clear()
            macs = conv_macs(head, lambda: head(feats))
            rows.append(dict(depth=depth, nodes=len(nodes), head_macs=macs))
        for hook in hooks:
            hook.remove()
        runs = {
            'head': lambda: head(feats),
            'model': lambda: head(model.extract_feat(inputs)),
        }
        times = {(d, k): [] for d in depths for k in runs}
        # round robin over the depths, so that a change of load on a shared
        # machine affects every depth alike
        for step in range(warmup + repeats):
            for depth in depths:
                head.prune_level = depth
                for key, fn in runs.items():
                    elapsed = _elapsed_ms(fn, device)
                    if step >= warmup:
                        times[depth, key].append(elapsed)
    for row in rows:
        for key in runs:
            samples = times[row['depth'], key]
            row[f'{key}_ms'] = statistics.median(samples)
            row[f'{key}_min_ms'] = min(samples)
        print(f"L^{row['depth']}: {row}", file=sys.stderr, flush=True)
    full = rows[-1]
    n, c, h, w = shape
    print(f'\nUNet++ pruning, {osp.basename(config)}, input {n}x{c}x{h}x{w}, '
          f'{num_classes} classes, device {device}, '
          f'{torch.get_num_threads()} threads, {repeats} runs after '
          f'{warmup} warm-up, torch {torch.__version__}; backbone conv '
          f'GMACs '
          f'{backbone_macs / 1e9:.2f} (every row)\n')
    print('| network | decoder nodes | head conv GMACs | head (ms), median '
          '| min | speed-up | backbone + head (ms), median | min | '
          'speed-up |')
    print('|---|---:|---:|---:|---:|---:|---:|---:|---:|')
    for r in rows:
        name = f"L^{r['depth']}" + (' (full)' if r is full else '')
        # speed-ups of the medians (round robin: comparable across rows)
        print(f"| {name} | {r['nodes']} | {r['head_macs'] / 1e9:.2f} | "
              f"{r['head_ms']:.0f} | {r['head_min_ms']:.0f} | "
              f"{full['head_ms'] / r['head_ms']:.1f}x | "
              f"{r['model_ms']:.0f} | {r['model_min_ms']:.0f} | "
              f"{full['model_ms'] / r['model_ms']:.1f}x |")
    return rows
