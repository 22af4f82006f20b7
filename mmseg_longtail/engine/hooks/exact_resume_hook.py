"""Make a resumed run bit-identical to an uninterrupted one."""
import logging
import random
from typing import Callable, Iterator

import numpy as np
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop
from mmseg.registry import HOOKS

# Domain tags of the derived seeds, so that the streams of batch n, epoch n
# and iteration n never coincide.
_BATCH, _EPOCH, _ITER = 0, 1, 2


def derived_seed(seed: int, rank: int, tag: int, index: int) -> int:
    """A 64-bit seed that is a pure function of (run seed, rank, position).

    ``SeedSequence`` mixes its entropy words so that neighbouring positions
    give unrelated streams (a plain ``seed + index`` would not).
    """
    words = [int(seed) % 2**32, int(rank), int(tag), int(index)]
    lo, hi = np.random.SeedSequence(words).generate_state(2, np.uint32)
    return int(hi) << 32 | int(lo)


def reseed_all(seed64: int) -> None:
    """Seed torch (CPU and every CUDA device), numpy's and Python's global
    generators from one 64-bit seed."""
    torch.manual_seed(seed64)  # also seeds the CUDA generators (lazily)
    np.random.seed(seed64 % 2**32)
    random.seed(seed64)


class _ReseedingIterator:
    """The train loop's data iterator with the global generators reseeded
    before each batch is drawn, from the batch's index since the start of
    training.

    mmengine's ``IterBasedTrainLoop`` resumes by drawing (and discarding) the
    batches already trained on; they are counted here too, so batch ``n``
    of a resumed run is drawn and trained with the same generator states as
    batch ``n`` of the uninterrupted run.
    """

    def __init__(self, inner: Iterator, reseed: Callable[[int], None]):
        self._inner = inner
        self._reseed = reseed
        self._index = 0

    def __iter__(self) -> '_ReseedingIterator':
        return self

    def __next__(self):
        self._reseed(self._index)
        self._index += 1
        return next(self._inner)

    def __getattr__(self, name: str):
        # anything else (e.g. ``_dataloader``) is the wrapped iterator's
        return getattr(self._inner, name)


@HOOKS.register_module()
class ExactResumeHook(Hook):
    """Make training bit-exact across interruptions and resumes.

    mmengine restores weights, optimizer, schedulers and the iteration on
    ``--resume``, and replays the data order, but not the random generators
    of the processes: dropout, random augmentation in the main process
    (``num_workers=0``) and anything else drawing from torch / numpy /
    Python's global generators continue from a fresh seed, so a resumed run
    drifts from the uninterrupted one. Evaluation also draws from the torch
    generator (creating a data loader iterator does), so a run's trajectory
    depended on how often it was evaluated.

    This hook makes the generator states a pure function of the position in
    training instead of something to save: before each training batch is
    drawn (iteration-based loops) every process seeds torch (CPU and CUDA),
    numpy and Python's ``random`` from ``(runner seed, rank, batch index)``;
    epoch-based loops are reseeded at the start of each epoch and before
    each iteration. Together with mmengine's replay of the sampler and of
    the data loader workers' streams (each worker is seeded from the run
    seed, the rank and its id, and the replay runs it over the same
    batches), a run killed at any point and resumed from its last checkpoint
    ends with the same weights as the uninterrupted run, for any number of
    processes, and evaluation no longer changes the training trajectory.
    Ranks draw different streams (independent dropout masks per process).

    Nothing is added to checkpoints, and a checkpoint written without the
    hook resumes as before. Cost: three reseeds per iteration (tens of
    microseconds, no device sync).

    Args:
        enabled (bool): False makes the hook a no-op (an override for
            configs that inherit it from the runtime base).
    """

    priority = 'VERY_HIGH'

    def __init__(self, enabled: bool = True) -> None:
        if not isinstance(enabled, bool):
            raise TypeError('ExactResumeHook: enabled must be True or False, '
                            f'got {enabled!r}')
        self.enabled = enabled
        self._seed = 0
        self._rank = 0
        self._wrapped = False

    def _reseed(self, tag: int, index: int) -> None:
        reseed_all(derived_seed(self._seed, self._rank, tag, index))

    def before_train(self, runner) -> None:
        if not self.enabled:
            return
        self._seed = runner.seed
        self._rank = get_rank()
        loop = runner.train_loop
        if isinstance(loop, IterBasedTrainLoop):
            # before_train runs after the checkpoint is loaded and before
            # the loop's replay of the trained batches
            loop.dataloader_iterator = _ReseedingIterator(
                loop.dataloader_iterator,
                lambda n: self._reseed(_BATCH, n))
            self._wrapped = True
        elif not isinstance(loop, EpochBasedTrainLoop):
            print_log(
                f'ExactResumeHook: train loop {type(loop).__name__} is '
                'neither iteration- nor epoch-based; generators are '
                'reseeded before each iteration only (a resume is exact '
                'for the model, not for augmentation in the main process)',
                logger='current', level=logging.WARNING)

    def before_train_epoch(self, runner) -> None:
        if self.enabled and not self._wrapped:
            # epoch-based loops resume at epoch boundaries: the epoch's
            # first batch is drawn after this
            self._reseed(_EPOCH, runner.epoch)

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        if self.enabled and not self._wrapped:
            self._reseed(_ITER, runner.iter)
