"""Time and memory of the long-tail losses against mmseg's cross-entropy.

Times forward + backward of every loss on random logits of a given shape
(default on CPU 2x19x512x1024, a Cityscapes-sized batch of 2; on CUDA that
and 8x19x512x1024, one table each), in the same process and interleaved
round-robin with mmseg's ``CrossEntropyLoss`` so that drift of the machine
affects all alike; reports the median over ``repeats`` and the ratio to CE.
On CUDA each forward + backward is timed with CUDA events around it (the
device's time, not the host's). Peak memory is the largest amount of
memory allocated by torch during one forward + backward on top of what
existed before it (the logits and labels): on CUDA from
``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``; on
CPU from the allocation events of ``torch.profiler`` (``profile_memory``),
summed in time order (the profiler's own log lines are silenced). It is
also given in units of one logits-sized tensor.

The losses: the hand-picked :data:`VARIANTS` (each loss's main options),
then every other loss of the plugin's registry (a :class:`LongTailLoss`
subclass registered by ``mmseg_longtail``), built from the first loss base
of ``configs/_base_/losses`` that uses it, else with its defaults; a loss
that needs class counts gets synthetic long-tailed ones. A loss added to
the package is thus benchmarked without a change here.

Targets (the ``target`` column): every loss <= 1.15x CE, BLV <= 1.6x (its
random draw is part of the loss); peak memory <= CE's plus one
logits-sized tensor.

``tools/analysis_tools/benchmark_losses.py`` is the command line of
:func:`benchmark_losses`.
"""
import contextlib
import glob
import itertools
import logging
import os
import os.path as osp
import platform
import statistics
import sys
import time
import warnings
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

# target ratios to CE of forward + backward
TARGET = 1.15
BLV_TARGET = 1.6
# shapes (N, C, H, W) measured when none is given
CPU_SHAPES = [(2, 19, 512, 1024)]
CUDA_SHAPES = [(2, 19, 512, 1024), (8, 19, 512, 1024)]

# (label, config, target ratio to CE); counts are filled in per shape
VARIANTS: List[Tuple[str, dict, float]] = [
    ('SoftmaxFocal', dict(type='SoftmaxFocalLoss', gamma=2.0), TARGET),
    ('ClassBalanced (ce)', dict(type='ClassBalancedLoss', base='ce'),
     TARGET),
    ('ClassBalanced (focal)', dict(type='ClassBalancedLoss', base='focal'),
     TARGET),
    ('BalancedSoftmax', dict(type='BalancedSoftmaxLoss'), TARGET),
    ('LDAM (s=1)', dict(type='LDAMLoss', s=1.0), TARGET),
    ('LDAM (s=30)', dict(type='LDAMLoss', s=30.0), TARGET),
    ('LDAM (s=1) + DRW', dict(type='LDAMLoss', s=1.0, drw_start_iter=0),
     TARGET),
    ('BLV (official, gaussian)', dict(type='BLVLoss'), BLV_TARGET),
    ('BLV (paper, gaussian)', dict(type='BLVLoss', mode='paper'),
     BLV_TARGET),
    ('BLV (official, uniform)', dict(type='BLVLoss',
                                     distribution='uniform'), BLV_TARGET),
    ('PAT (mask)', dict(type='PATLoss'), TARGET),
    ('PAT (pixel)', dict(type='PATLoss', normalize='pixel'), TARGET),
]


def plugin_losses() -> Dict[str, type]:
    """Name -> class of every loss the plugin registers in mmseg's
    ``MODELS`` (the :class:`LongTailLoss` subclasses of
    ``mmseg_longtail``), in name order."""
    from mmseg.registry import MODELS

    import mmseg_longtail  # noqa: F401  (registers the losses)
    from mmseg_longtail.models.losses.base import LongTailLoss
    found = {name: cls for name, cls in MODELS.module_dict.items()
             if isinstance(cls, type) and issubclass(cls, LongTailLoss)
             and cls.__module__.startswith('mmseg_longtail.')}
    return dict(sorted(found.items()))


def loss_base_dir() -> Optional[str]:
    """``configs/_base_/losses`` of the checkout (or of the installed
    package's ``.mim``), None when neither is there."""
    import mmseg_longtail
    package = osp.dirname(mmseg_longtail.__file__)
    for root in (osp.join(package, '.mim', 'configs'),
                 osp.join(osp.dirname(package), 'configs')):
        path = osp.join(root, '_base_', 'losses')
        if osp.isdir(path):
            return path
    return None


def loss_base_configs() -> List[Tuple[str, dict]]:
    """(file stem, loss dict) of every loss dict of the loss bases, files
    in name order (a list of losses gives one entry each)."""
    from mmengine.config import Config
    folder = loss_base_dir()
    found = []
    for path in sorted(glob.glob(osp.join(folder or '', '*.py'))):
        losses = Config.fromfile(path).get('loss_decode')
        if isinstance(losses, dict):
            losses = [losses]
        stem = osp.splitext(osp.basename(path))[0]
        found += [(stem, dict(cfg)) for cfg in losses or ()
                  if isinstance(cfg, dict) and 'type' in cfg]
    return found


def all_variants() -> List[Tuple[str, dict, float]]:
    """:data:`VARIANTS`, then one variant of every other registered loss of
    the plugin: from the first loss base that uses it (``loss_weight`` and
    ``loss_name`` dropped), else its defaults; target :data:`TARGET`."""
    covered = {cfg['type'] for _, cfg, _ in VARIANTS}
    bases = loss_base_configs()
    variants = list(VARIANTS)
    for name in plugin_losses():
        if name in covered:
            continue
        label = name[:-len('Loss')] if name.endswith('Loss') else name
        cfg = dict(type=name)
        for stem, base in bases:
            if base['type'] == name:
                cfg = {k: v for k, v in base.items()
                       if k not in ('loss_weight', 'loss_name',
                                    'class_counts')}
                label = f'{label} ({stem}.py)'
                break
        variants.append((label, cfg, TARGET))
    return variants


class ScaledCrossEntropy(torch.nn.Module):
    """mmseg's CE on ``s * z``: the baseline for LDAM with scale ``s``
    (soft-max over logits spread by 30 is itself slower on CPU)."""

    def __init__(self, ce: torch.nn.Module, s: float) -> None:
        super().__init__()
        self.ce, self.s = ce, s

    def forward(self, cls_score, label, **kwargs):
        return self.ce(cls_score * self.s, label, **kwargs)


def build_variants(num_classes: int, imbalance: float,
                   only: Optional[Sequence[str]] = None
                   ) -> List[Tuple[str, torch.nn.Module, Optional[float]]]:
    """(label, loss, target ratio) of mmseg's CE first, then of every
    variant whose label contains one of ``only`` (all when empty)."""
    from mmengine.logging import MMLogger
    from mmseg.registry import MODELS  # filled by importing mmseg_longtail
    # long-tailed pixel counts of a data set of ~1e9 pixels
    counts = (1e8 * imbalance**(-np.arange(num_classes) /
                                max(num_classes - 1, 1))).round().tolist()
    ce = MODELS.build(dict(type='CrossEntropyLoss', avg_non_ignore=True))
    losses = [('CrossEntropy (mmseg)', ce, None)]
    if not only or any('ldam' in s.lower() for s in only):
        losses.append(('CrossEntropy (mmseg) on 30*z',
                       ScaledCrossEntropy(ce, 30.0), None))
    # the losses warn of near-uniform CB weights, through Python's warnings
    # and mmengine's logger; only the cost is measured here
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            for label, cfg, target in all_variants():
                if only and not any(s.lower() in label.lower()
                                    for s in only):
                    continue
                cfg = dict(cfg, avg_non_ignore=True)
                if MODELS.get(cfg['type']).requires_counts:
                    cfg['class_counts'] = counts
                try:
                    loss = MODELS.build(cfg)
                except Exception as error:
                    raise RuntimeError(
                        f'benchmark_losses: {label} does not build from '
                        f'{cfg} ({type(error).__name__}: {error}); give it '
                        'its arguments in VARIANTS of '
                        'mmseg_longtail/analysis/benchmark_losses.py') \
                        from error
                losses.append((label, loss, target))
    finally:
        logger.setLevel(level)
    return losses


def synchronize(device: str) -> None:
    """Wait for queued CUDA work, so wall times cover all of it."""
    if device == 'cuda':
        torch.cuda.synchronize()


def step(loss: Callable, logits: torch.Tensor, label: torch.Tensor) -> None:
    """One forward + backward; the gradient is dropped for the next one."""
    loss(logits, label, ignore_index=255).backward()
    logits.grad = None


def timed_step(loss: Callable, logits: torch.Tensor, label: torch.Tensor,
               device: str) -> Tuple[float, float]:
    """(seconds, host CPU seconds) of one forward + backward: on CUDA the
    device time between two CUDA events recorded around it (queued work
    finished first), on CPU the wall time."""
    synchronize(device)
    start_cpu = time.process_time()
    if device == 'cuda':
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        step(loss, logits, label)
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3, time.process_time() - start_cpu
    start = time.perf_counter()
    step(loss, logits, label)
    return time.perf_counter() - start, time.process_time() - start_cpu


@contextlib.contextmanager
def native_stderr_silenced():
    """File descriptor 2 to the null device for the block: the profiler's
    C++ library logs each start and stop, and on a machine without CUDA an
    error about the GPU count, to the process's stderr, which Python's
    ``sys.stderr`` redirection does not reach."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, 'w') as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def peak_memory(loss: Callable, logits: torch.Tensor, label: torch.Tensor,
                device: str) -> int:
    """Bytes allocated at the peak of one forward + backward, above the
    memory in use before it."""
    if device == 'cuda':
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step(loss, logits, label)
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile
    with native_stderr_silenced():
        with profile(activities=[ProfilerActivity.CPU],
                     profile_memory=True) as p:
            step(loss, logits, label)
        events = list(p.profiler.kineto_results.experimental_event_tree())
    allocs = []
    while events:
        event = events.pop()
        events.extend(event.children)
        if event.typed[0] == _EventType.Allocation:
            allocs.append((event.start_time_ns, event.typed[1].alloc_size))
    allocs.sort()
    return max(itertools.accumulate(size for _, size in allocs), default=0)


ShapeLike = Union[Sequence[int], Sequence[Sequence[int]], None]


def default_shapes(device: str) -> List[Tuple[int, ...]]:
    return list(CUDA_SHAPES if device == 'cuda' else CPU_SHAPES)


def as_shapes(shape: ShapeLike, device: str) -> List[Tuple[int, ...]]:
    """One (N, C, H, W) or a list of them; None: the device's defaults."""
    if shape is None or len(shape) == 0:
        return default_shapes(device)
    if all(isinstance(v, int) for v in shape):
        shape = [shape]
    shapes = [tuple(int(v) for v in s) for s in shape]
    for s in shapes:
        if len(s) != 4:
            raise ValueError(f'shape must be N C H W, got {s}')
    return shapes


def benchmark_losses(shape: ShapeLike = None,
                     repeats: int = 7,
                     warmup: int = 1,
                     device: str = 'cpu',
                     threads: Optional[int] = None,
                     ignore_frac: float = 0.05,
                     imbalance: float = 1000.0,
                     only: Optional[Sequence[str]] = None,
                     memory: bool = True,
                     markdown: bool = False,
                     summary: bool = False) -> List[List[str]]:
    """Time (and measure the memory of) every loss; print one table per
    shape.

    Args:
        shape: logits shape (N, C, H, W), or a list of them (None: on CPU
            2x19x512x1024, on CUDA that and 8x19x512x1024).
        repeats: timed runs of every loss (after ``warmup`` untimed ones).
        warmup: untimed runs of every loss first.
        device: 'cpu' or 'cuda'.
        threads: torch CPU threads (None: torch's default).
        ignore_frac: fraction of pixels labelled 255.
        imbalance: max/min of the synthetic class counts.
        only: substrings of variant labels to run (None: all).
        memory: also measure the peak memory of each loss.
        markdown: print the table as Markdown.
        summary: end with one line naming the losses over their targets
            (:func:`over_target`).

    Returns:
        the table rows as printed (one list of cells per loss), the tables
        of all shapes one after the other.
    """
    if threads:
        torch.set_num_threads(threads)
    if device == 'cuda' and not torch.cuda.is_available():
        raise RuntimeError('--device cuda: CUDA is not available')
    from mmengine.logging import MessageHub
    MessageHub.get_current_instance().update_info('iter', 0)  # DRW active
    rows, misses, counted = [], [], 0
    for one in as_shapes(shape, device):
        table = benchmark_shape(one, repeats, warmup, device, ignore_frac,
                                imbalance, only, memory, markdown)
        rows += table
        counted += sum(row[6] != '-' for row in table)
        size = 'x'.join(str(v) for v in one)
        misses += [f'{miss} at {size}' for miss in over_target(table)]
    if summary:
        print(f'benchmark: {len(misses)} of {counted} over target' +
              (': ' + ', '.join(misses) if misses else
               ' (all within target)'))
    return rows


def over_target(rows: List[List[str]]) -> List[str]:
    """The losses of a table that miss a target, one entry each: over its
    time target (median ratio to CE), or peaking more than one
    logits-sized tensor above CE."""
    misses = []
    for row in rows:
        name, ratio, target, extra = row[0], row[2], row[6], row[8]
        why = []
        if target != '-' and float(ratio) > float(target.split()[-1]):
            why.append(f'{ratio}x CE, target {target}')
        if extra != '-' and float(extra) > 1.0:
            why.append(f'peak {extra} logits above CE, target <= +1')
        if why:
            misses.append(f'{name} ({"; ".join(why)})')
    return misses


def benchmark_shape(shape: Sequence[int], repeats: int, warmup: int,
                    device: str, ignore_frac: float, imbalance: float,
                    only: Optional[Sequence[str]], memory: bool,
                    markdown: bool) -> List[List[str]]:
    """The table of one shape (see :func:`benchmark_losses`)."""
    n, c, h, w = shape
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(n, c, h, w, generator=gen).to(device)
    logits.requires_grad_()
    label = torch.randint(0, c, (n, h, w), generator=gen)
    label[torch.rand(n, h, w, generator=gen) < ignore_frac] = 255
    label = label.to(device)
    losses = build_variants(c, imbalance, only)
    for _, loss, _ in losses:
        loss.to(device)

    times: Dict[str, List[float]] = {name: [] for name, _, _ in losses}
    cpu: Dict[str, List[float]] = {name: [] for name, _, _ in losses}
    torch.manual_seed(0)
    for r in range(warmup + repeats):
        for name, loss, _ in losses:
            wall, host = timed_step(loss, logits, label, device)
            if r >= warmup:
                times[name].append(wall)
                cpu[name].append(host)
    peaks = {}
    if memory:
        for name, loss, _ in losses:
            peaks[name] = peak_memory(loss, logits, label, device)

    logits_bytes = logits.numel() * logits.element_size()
    ce_name = losses[0][0]
    ce_time = statistics.median(times[ce_name])
    device_name = (torch.cuda.get_device_name() if device == 'cuda' else
                   f'{platform.processor() or platform.machine()}, '
                   f'{torch.get_num_threads()} threads')
    timing = 'CUDA events' if device == 'cuda' else 'wall time'
    print(f'device: {device_name}; torch {torch.__version__}; shape '
          f'{n}x{c}x{h}x{w} float32; {repeats} repeats ({timing}); ignore '
          f'{ignore_frac:.0%} of pixels')
    header = ['loss', 'median ms', 'x CE', 'min ms', 'x CE (min)',
              'CPU x CE', 'target', 'peak MB', 'peak - CE (logits)']
    ce_min = min(times[ce_name])
    ce_cpu = max(statistics.median(cpu[ce_name]), 1e-9)
    rows = []
    for name, _, target in losses:
        t = statistics.median(times[name])
        t_min = min(times[name])
        row = [name, f'{t * 1e3:.1f}', f'{t / ce_time:.2f}',
               f'{t_min * 1e3:.1f}', f'{t_min / ce_min:.2f}',
               f'{statistics.median(cpu[name]) / ce_cpu:.2f}',
               '-' if target is None else f'<= {target}']
        if peaks:
            extra = (peaks[name] - peaks[ce_name]) / logits_bytes
            row += [f'{peaks[name] / 2**20:.0f}', f'{extra:+.2f}']
        else:
            row += ['-', '-']
        rows.append(row)
    if markdown:
        print('| ' + ' | '.join(header) + ' |')
        print('|' + '---|' * len(header))
        for row in rows:
            print('| ' + ' | '.join(row) + ' |')
    else:
        widths = [max(len(r[i]) for r in rows + [header])
                  for i in range(len(header))]
        for row in [header] + rows:
            print('  '.join(v.ljust(wd) for v, wd in zip(row, widths)))
    return rows
