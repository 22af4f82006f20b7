"""Training-step time and size of the models of the comparison.

Builds each ``configs/_base_/models/<name>.py`` (SyncBN made BN, as a
single process computes the same), then times, on random data,

* one training step: ``model.loss`` (decode + auxiliary heads) + backward,
* one inference: ``model.predict`` in whole mode (``--no-infer`` skips it),

and prints the median and the minimum over ``--repeats`` runs after
``--warmup`` runs, with the number of trainable parameters, as a Markdown
table (plus the load average: on a shared machine, compare minima).

Example::

    python tools/analysis_tools/benchmark_models.py --shape 2 3 256 512
"""
import argparse
import os
import os.path as osp
import statistics
import sys
import time
from typing import Callable, Dict, List, Tuple

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_MODELS = ['unet', 'attunet', 'unetpp', 'deeplabv3', 'deeplabv3plus']


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--models', nargs='+', default=DEFAULT_MODELS,
                        help='base config names in --config-dir')
    parser.add_argument('--config-dir',
                        default=osp.join(REPO, 'configs', '_base_', 'models'))
    parser.add_argument('--shape', nargs=4, type=int,
                        default=[2, 3, 256, 512], metavar=('N', 'C', 'H', 'W'))
    parser.add_argument('--num-classes', type=int, default=19)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--threads', type=int, default=None,
                        help='torch threads (default: torch default)')
    parser.add_argument('--no-infer', action='store_true',
                        help='time the training step only')
    parser.add_argument('--device', default='cpu')
    return parser.parse_args(argv)


def sync_bn_to_bn(cfg):
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


def build_model(path: str, num_classes: int):
    from mmengine.config import Config, ConfigDict
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')  # as the runner does (default_scope)
    cfg = Config.fromfile(path).model.to_dict()
    for head in ('decode_head', 'auxiliary_head'):
        if cfg.get(head):
            cfg[head]['num_classes'] = num_classes
    ceco = cfg['decode_head'].get('ceco_cfg')
    if ceco is not None and ceco.get('class_counts') is None:
        ceco['class_counts'] = [1] * num_classes  # uniform: timing only
    model = MODELS.build(ConfigDict(sync_bn_to_bn(cfg)))
    model.init_weights()
    return model


def time_ms(fn: Callable[[], None], repeats: int, warmup: int,
            device: str) -> Tuple[float, float]:
    """Median and minimum wall time of ``fn`` in ms (the minimum is the
    least disturbed by other load on a shared machine)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device.startswith('cuda'):
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.startswith('cuda'):
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), min(times)


def benchmark(name: str, args) -> Dict[str, float]:
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    model = build_model(osp.join(args.config_dir, f'{name}.py'),
                        args.num_classes).to(args.device)
    n, c, h, w = args.shape
    gen = torch.Generator().manual_seed(0)
    inputs = torch.randn(n, c, h, w, generator=gen).to(args.device)
    samples = []
    for _ in range(n):
        sample = SegDataSample(metainfo=dict(
            img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w)))
        label = torch.randint(0, args.num_classes, (1, h, w), generator=gen)
        sample.gt_sem_seg = PixelData(data=label.to(args.device))
        samples.append(sample)

    def train_step():
        model.zero_grad(set_to_none=True)
        losses = model.loss(inputs, samples)
        sum(v for k, v in losses.items() if 'loss' in k).backward()

    def infer():
        with torch.no_grad():
            model.predict(inputs, samples)

    model.train()
    result = dict(
        params=sum(p.numel() for p in model.parameters() if p.requires_grad))
    result['train_ms'], result['train_min_ms'] = time_ms(
        train_step, args.repeats, args.warmup, args.device)
    if not args.no_infer:
        model.eval()
        result['infer_ms'], result['infer_min_ms'] = time_ms(
            infer, args.repeats, args.warmup, args.device)
    return result


def format_table(rows: List[Dict], infer: bool) -> str:
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


def main(argv=None):
    args = parse_args(argv)
    if REPO not in sys.path:
        sys.path.insert(0, REPO)
    import mmseg_longtail  # noqa: F401  (registers the heads)
    from mmengine.logging import MMLogger

    # the current logger: keeps init_weights' per-parameter INFO lines out
    MMLogger.get_instance('benchmark_models', log_level='WARNING')
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = []
    for name in args.models:
        res = benchmark(name, args)
        res['name'] = name
        rows.append(res)
        print(f'{name}: {res}', file=sys.stderr, flush=True)
    n, c, h, w = args.shape
    load = ' '.join(f'{x:.1f}' for x in os.getloadavg())
    print(f'\nInput {n}x{c}x{h}x{w}, {args.num_classes} classes, '
          f'device {args.device}, {torch.get_num_threads()} threads, '
          f'{args.repeats} runs after {args.warmup} warm-up, '
          f'torch {torch.__version__}, load average at the end {load}\n')
    print(format_table(rows, not args.no_infer))


if __name__ == '__main__':
    main()
