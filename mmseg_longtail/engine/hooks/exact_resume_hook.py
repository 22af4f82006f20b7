"""Make a resumed run bit-identical to an uninterrupted one."""
import logging
import os
import random
from typing import Callable, Iterator, Optional, Tuple

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

    On CUDA the same numbers must also be computed the same way in the
    resumed process. With ``cuda_deterministic`` (on when CUDA is
    available) the hook asks for cuDNN's deterministic convolution
    algorithms (``torch.backends.cudnn.deterministic``) and for torch's
    deterministic implementations where they exist
    (``torch.use_deterministic_algorithms(True, warn_only=True)``:
    ``index_add_``, ``scatter_add_``, ``index_select``'s backward, with
    ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` for cuBLAS) for the run, and
    restores the previous settings after it. cuDNN's autotuner must be off
    too: ``env_cfg.cudnn_benchmark=False`` (the runtime base sets it; the
    hook warns when it is on), since it times candidate algorithms in each
    process and may pick others after the resume. What remains
    nondeterministic on CUDA are the kernels that have no deterministic
    version and warn once: bilinear interpolation's backward (mmseg's
    ``resize`` of the logits, UNet's ``InterpConv``) accumulates with
    atomics, so a model using it resumes to within the GPU's own
    run-to-run noise rather than bit for bit (tests/test_cuda).

    Args:
        enabled (bool): False makes the hook a no-op (an override for
            configs that inherit it from the runtime base).
        cuda_deterministic (bool): on CUDA, use deterministic algorithms
            during training (see above). Default: True.
    """

    priority = 'VERY_HIGH'

    def __init__(self, enabled: bool = True,
                 cuda_deterministic: bool = True) -> None:
        for field, value in (('enabled', enabled),
                             ('cuda_deterministic', cuda_deterministic)):
            if not isinstance(value, bool):
                raise TypeError(f'ExactResumeHook: {field} must be True or '
                                f'False, got {value!r}')
        self.enabled = enabled
        self.cuda_deterministic = cuda_deterministic
        self._seed = 0
        self._rank = 0
        self._wrapped = False
        self._previous: Optional[Tuple[bool, bool, bool]] = None

    def _set_cuda_deterministic(self) -> None:
        """Deterministic cuDNN and torch algorithms for the run (CUDA
        only: on CPU nothing changes)."""
        if not (self.cuda_deterministic and torch.cuda.is_available()):
            return
        self._previous = (
            torch.backends.cudnn.deterministic,
            torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled())
        if torch.backends.cudnn.benchmark:
            print_log(
                'ExactResumeHook: cuDNN benchmark mode is on '
                '(env_cfg.cudnn_benchmark=True): it picks convolution '
                'algorithms by timing them in each process, so a resumed '
                'run may compute with other algorithms than the '
                'uninterrupted one; set env_cfg.cudnn_benchmark=False for '
                'a bit-exact resume', logger='current',
                level=logging.WARNING)
        os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True, warn_only=True)

    def after_run(self, runner) -> None:
        if self._previous is not None:
            cudnn_deterministic, enabled, warn_only = self._previous
            torch.backends.cudnn.deterministic = cudnn_deterministic
            torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
            self._previous = None

    def _reseed(self, tag: int, index: int) -> None:
        reseed_all(derived_seed(self._seed, self._rank, tag, index))

    def before_train(self, runner) -> None:
        if not self.enabled:
            return
        self._seed = runner.seed
        self._rank = get_rank()
        self._set_cuda_deterministic()
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
