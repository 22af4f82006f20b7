"""Per-class statistics a loss gathers online while it trains (RecallLoss's
running recall, SeesawLoss's cumulative pixel counts).

They live in persistent buffers, so a checkpoint saves them and ``--resume``
continues from them. The number of classes is only known at the first
forward (from the logits), so the buffers start empty and take their size
then, or from a checkpoint loaded before that forward. Batch counts are
summed over the processes of a distributed run (``torch.distributed``
initialised) before they are used, so every process holds the same
statistics; the sum is a collective, run at every training forward.
"""
import torch
from mmengine.dist import all_reduce, is_distributed
from torch import Tensor

from .base import PixelTargets


def sum_over_processes(tensor: Tensor) -> Tensor:
    """``tensor`` summed over the processes (in place); unchanged in one
    process."""
    if is_distributed():
        all_reduce(tensor, op='sum')
    return tensor


def class_histogram(index: Tensor, num_classes: int) -> Tensor:
    """(C,) int64 counts of ``index`` values ``0..C-1``; the value ``C``
    marks pixels that count for no class (ignored, or not selected)."""
    # accumulating index_put_, not bincount: bincount reads the largest
    # value back to the host on CUDA; this stays on the device (and is
    # deterministic for integers)
    counts = index.new_zeros(num_classes + 1, dtype=torch.long)
    counts.index_put_((index.reshape(-1), ), counts.new_ones(()),
                      accumulate=True)
    return counts[:num_classes]


def label_histogram(target: PixelTargets) -> Tensor:
    """(C,) int64 counts of the labelled pixels of each class."""
    return class_histogram(target.index, target.num_classes)


class OnlineClassState:
    """Mixin of a :class:`~.base.LongTailLoss` that keeps per-class
    statistics in persistent, lazily sized buffers.

    ``register_class_state(name, dtype)`` in ``__init__``;
    ``class_state(name, like)`` at a forward returns the buffer, sized to
    ``like.shape[1]`` classes on first use.
    """

    def register_class_state(self, name: str, dtype: torch.dtype) -> None:
        """An empty persistent buffer ``name`` (saved in checkpoints)."""
        if '_class_state_names' not in self.__dict__:
            self._class_state_names = []
        self._class_state_names.append(name)
        self.register_buffer(name, torch.zeros(0, dtype=dtype))

    def class_state(self, name: str, like: Tensor) -> Tensor:
        """Buffer ``name`` with one entry per class of the logits ``like``
        (zeros on first use)."""
        return self._sized_state(name, like.shape[1], like.device)

    def _sized_state(self, name: str, num_classes: int, device) -> Tensor:
        buf = getattr(self, name)
        if buf.numel() == num_classes:
            return buf
        if buf.numel():
            raise ValueError(
                f'{type(self).__name__}: the buffer {name} holds '
                f'{buf.numel()} classes (from a checkpoint or earlier '
                f'batches) but the model predicts {num_classes} classes')
        buf = torch.zeros(num_classes, dtype=buf.dtype, device=device)
        setattr(self, name, buf)  # replaces the registered buffer
        return buf

    def check_num_classes(self, num_classes: int) -> None:
        """The base class's length checks, then the buffers sized (the
        plugin's heads call this when built)."""
        super().check_num_classes(num_classes)
        for name in self.__dict__.get('_class_state_names', ()):
            self._sized_state(name, int(num_classes),
                              getattr(self, name).device)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # a loss that has not run yet holds empty buffers: take the
        # checkpoint's size, so that loading before the first forward works
        for name in self.__dict__.get('_class_state_names', ()):
            saved = state_dict.get(prefix + name)
            buf = getattr(self, name)
            if saved is not None and buf.numel() == 0 and saved.numel():
                setattr(self, name,
                        torch.zeros(saved.shape, dtype=buf.dtype,
                                    device=buf.device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
