"""Time and memory of the long-tail losses against mmseg's cross-entropy.

Times forward + backward of every loss on random logits of a given shape
(default 2x19x512x1024, a Cityscapes-sized batch of 2), in the same process
and interleaved round-robin with mmseg's ``CrossEntropyLoss`` so that drift
of the machine affects all alike; reports the median over ``repeats`` and
the ratio to CE. Peak memory is the largest amount of memory allocated by
torch during one forward + backward on top of what existed before it (the
logits and labels): on CUDA from ``torch.cuda.max_memory_allocated``; on
CPU from the allocation events of ``torch.profiler`` (``profile_memory``),
summed in time order (the profiler's own log lines are silenced). It is
also given in units of one logits-sized tensor.

``tools/analysis_tools/benchmark_losses.py`` is the command line of
:func:`benchmark_losses`.
"""
import contextlib
import itertools
import logging
import os
import platform
import statistics
import sys
import time
import warnings
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

# (label, config, target ratio to CE); counts are filled in per shape
VARIANTS: List[Tuple[str, dict, float]] = [
    ('SoftmaxFocal', dict(type='SoftmaxFocalLoss', gamma=2.0), 1.25),
    ('ClassBalanced (ce)', dict(type='ClassBalancedLoss', base='ce'), 1.25),
    ('ClassBalanced (focal)', dict(type='ClassBalancedLoss', base='focal'),
     1.25),
    ('BalancedSoftmax', dict(type='BalancedSoftmaxLoss'), 1.25),
    ('LDAM (s=1)', dict(type='LDAMLoss', s=1.0), 1.25),
    ('LDAM (s=30)', dict(type='LDAMLoss', s=30.0), 1.25),
    ('LDAM (s=1) + DRW', dict(type='LDAMLoss', s=1.0, drw_start_iter=0),
     1.25),
    ('BLV (official, gaussian)', dict(type='BLVLoss'), 1.5),
    ('BLV (paper, gaussian)', dict(type='BLVLoss', mode='paper'), 1.5),
    ('BLV (official, uniform)', dict(type='BLVLoss',
                                     distribution='uniform'), 1.5),
    ('PAT (mask)', dict(type='PATLoss'), 1.15),
    ('PAT (pixel)', dict(type='PATLoss', normalize='pixel'), 1.15),
]


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
            for label, cfg, target in VARIANTS:
                if only and not any(s.lower() in label.lower()
                                    for s in only):
                    continue
                cfg = dict(cfg, avg_non_ignore=True)
                if MODELS.get(cfg['type']).requires_counts:
                    cfg['class_counts'] = counts
                losses.append((label, MODELS.build(cfg), target))
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


def benchmark_losses(shape: Sequence[int] = (2, 19, 512, 1024),
                     repeats: int = 7,
                     warmup: int = 1,
                     device: str = 'cpu',
                     threads: Optional[int] = None,
                     ignore_frac: float = 0.05,
                     imbalance: float = 1000.0,
                     only: Optional[Sequence[str]] = None,
                     memory: bool = True,
                     markdown: bool = False) -> List[List[str]]:
    """Time (and measure the memory of) every loss; print the table.

    Args:
        shape: logits shape (N, C, H, W).
        repeats: timed runs of every loss (after ``warmup`` untimed ones).
        warmup: untimed runs of every loss first.
        device: 'cpu' or 'cuda'.
        threads: torch CPU threads (None: torch's default).
        ignore_frac: fraction of pixels labelled 255.
        imbalance: max/min of the synthetic class counts.
        only: substrings of variant labels to run (None: all).
        memory: also measure the peak memory of each loss.
        markdown: print the table as Markdown.

    Returns:
        the table rows as printed (one list of cells per loss).
    """
    if threads:
        torch.set_num_threads(threads)
    if device == 'cuda' and not torch.cuda.is_available():
        raise RuntimeError('--device cuda: CUDA is not available')
    from mmengine.logging import MessageHub
    MessageHub.get_current_instance().update_info('iter', 0)  # DRW active
    n, c, h, w = shape
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(n, c, h, w, generator=gen).to(device)
    logits.requires_grad_()
    label = torch.randint(0, c, (n, h, w), generator=gen)
    label[torch.rand(n, h, w, generator=gen) < ignore_frac] = 255
    label = label.to(device)
    losses = build_variants(c, imbalance, only)

    times: Dict[str, List[float]] = {name: [] for name, _, _ in losses}
    cpu: Dict[str, List[float]] = {name: [] for name, _, _ in losses}
    torch.manual_seed(0)
    for r in range(warmup + repeats):
        for name, loss, _ in losses:
            synchronize(device)
            start, start_cpu = time.perf_counter(), time.process_time()
            step(loss, logits, label)
            synchronize(device)
            if r >= warmup:
                times[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
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
    print(f'device: {device_name}; torch {torch.__version__}; shape '
          f'{n}x{c}x{h}x{w} float32; {repeats} repeats; ignore '
          f'{ignore_frac:.0%} of pixels')
    header = ['loss', 'median ms', 'x CE', 'min ms', 'x CE (min)',
              'CPU x CE', 'target', 'peak MB', 'peak - CE (logits)']
    ce_min = min(times[ce_name])
    ce_cpu = statistics.median(cpu[ce_name])
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
