"""Class weights generated from the class statistics JSON.

Four generators, each a function of the counts written by
``tools/analysis_tools/class_stats.py`` (see :mod:`.class_stats`):

* ``mfb``: ``median(freq) / freq_c`` with ``freq_c = n_c / T_c``
  (median-frequency balancing, Eigen & Fergus 2015); reads
  ``pixel_counts`` (``n_c``) and ``image_pixel_totals`` (``T_c``);
* ``enet``: ``1 / ln(1.02 + p_c)``, ``p_c = n_c / sum n`` (Paszke et al.
  2016); reads ``pixel_counts``;
* ``inverse``: ``1 / p_c``; reads ``pixel_counts``;
* ``sqrt_inverse``: ``1 / sqrt(p_c)``; reads ``pixel_counts``.

``n_c`` is the number of labelled pixels of class ``c``; ``T_c`` the number
of labelled pixels of the images that contain ``c`` (ignored pixels are
never counted). Median-frequency balancing thus compares a class with the
images it occurs in, not with the whole set: a class that fills the few
images holding it has a high ``freq_c`` although it is rare overall.

Normalisation, the same for all four: the weights are scaled to **mean 1
over the classes** (sum C), as the class-balanced weights of
:func:`mmseg_longtail.models.losses.base.effective_number_weights`. With
mmseg's class-weighted mean (the loss divided by the summed weights of the
pixels) a common factor cancels anyway; it matters for ``reduction='sum'``
and for losses whose weights are part of the value (CB). The unnormalised
``mfb`` weights have median 1; they differ from these by one factor.

Classes never seen in training (``n_c = 0``) would get an infinite weight
(``enet``: the largest finite one) and would dominate the normalisation:
they take the largest weight of the seen classes instead (no training pixel
carries them, so the value only matters if such a pixel appears later).
With no class seen at all, every weight is 1.

In a config, the ``class_weight`` of any of this package's losses takes
``'<stats.json>:<name>'`` (resolved where the loss base reads
``class_weight``)::

    loss_decode = dict(type='SoftmaxFocalLoss', gamma=0.0,  # = CE
                       class_weight='data/camvid/class_stats.json:mfb')

mmseg's own losses read ``class_weight`` themselves: ``class_stats.py
--weights NAME --weights-dir DIR`` writes the weights as a JSON list they
load.
"""
import os
import re
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from .class_stats import load_class_stats, require_stats_field

ENET_C = 1.02  # the constant of ENet's weighting (Paszke et al. 2016)
_NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_]*')


def _normalise(raw: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Unseen classes take the largest seen weight; then mean 1."""
    if not seen.any():
        return np.ones_like(raw)
    weights = np.where(seen, raw, raw[seen].max())
    return weights * (weights.size / weights.sum())


def median_frequency_weights(pixel_counts: Sequence[float],
                             image_pixel_totals: Sequence[float]
                             ) -> np.ndarray:
    """Median-frequency balancing (Eigen & Fergus, ICCV 2015):
    ``freq_c = n_c / T_c``, ``w_c = median(freq) / freq_c``, the median over
    the seen classes; normalised to mean 1 (module docstring)."""
    n = np.asarray(pixel_counts, dtype=np.float64)
    totals = np.asarray(image_pixel_totals, dtype=np.float64)
    seen = n > 0
    freq = np.where(seen, n / np.maximum(totals, 1.0), 1.0)
    median = np.median(freq[seen]) if seen.any() else 1.0
    return _normalise(median / freq, seen)


def enet_weights(pixel_counts: Sequence[float], c: float = ENET_C
                 ) -> np.ndarray:
    """ENet weighting (Paszke et al., 2016): ``1 / ln(c + p_c)``,
    ``p_c = n_c / sum n``; normalised to mean 1."""
    n = np.asarray(pixel_counts, dtype=np.float64)
    p = n / max(n.sum(), 1.0)
    return _normalise(1.0 / np.log(c + p), n > 0)


def inverse_frequency_weights(pixel_counts: Sequence[float],
                              power: float = 1.0) -> np.ndarray:
    """``1 / p_c^power`` (``power=1``: inverse, ``0.5``: square-root
    inverse frequency), ``p_c = n_c / sum n``; normalised to mean 1."""
    n = np.asarray(pixel_counts, dtype=np.float64)
    seen = n > 0
    p = np.where(seen, n / max(n.sum(), 1.0), 1.0)
    return _normalise(p**-power, seen)


@dataclass(frozen=True)
class WeightGenerator:
    """One generator: its function of the statistics and the JSON fields it
    reads (named in the error when an old file lacks one)."""
    fields: Tuple[str, ...]
    compute: Callable[..., np.ndarray]
    description: str


GENERATORS: Dict[str, WeightGenerator] = {
    'mfb': WeightGenerator(('pixel_counts', 'image_pixel_totals'),
                           median_frequency_weights,
                           'median frequency balancing (Eigen & Fergus)'),
    'enet': WeightGenerator(('pixel_counts', ), enet_weights,
                            '1 / ln(1.02 + p_c) (ENet)'),
    'inverse': WeightGenerator(('pixel_counts', ),
                               inverse_frequency_weights,
                               'inverse pixel frequency'),
    'sqrt_inverse': WeightGenerator(
        ('pixel_counts', ),
        lambda n: inverse_frequency_weights(n, power=0.5),
        'square-root inverse pixel frequency'),
}


def check_generator(name: str, field: str = 'class_weight') -> WeightGenerator:
    """The generator ``name``, or a ValueError naming it and the choices."""
    if name not in GENERATORS:
        raise ValueError(f'{field}: unknown class-weight generator {name!r}; '
                         f'choose from {sorted(GENERATORS)}')
    return GENERATORS[name]


def class_weights_from_stats(stats: Dict, name: str,
                             source: str = 'the statistics') -> np.ndarray:
    """Weights of generator ``name`` from a loaded statistics dict.

    Raises:
        ValueError: unknown ``name``.
        KeyError: the statistics lack a field the generator reads (files
            written before ``image_pixel_totals`` existed, for ``mfb``).
    """
    generator = check_generator(name)
    args = [
        require_stats_field(stats, key, source, f'class weights {name!r}')
        for key in generator.fields
    ]
    return generator.compute(*args)


def parse_weight_spec(spec) -> Optional[Tuple[str, str]]:
    """``('path.json', 'name')`` for a ``'path.json:name'`` string, else
    None (a plain list or weight file, as mmseg reads them)."""
    if not isinstance(spec, (str, os.PathLike)):
        return None
    path, sep, name = str(spec).rpartition(':')
    if not sep or not path.endswith('.json') or not _NAME.fullmatch(name):
        return None
    return path, name


def load_weight_spec(spec, field: str = 'class_weight'
                     ) -> Optional[np.ndarray]:
    """The weights a ``'<stats.json>:<generator>'`` string names, or None
    when ``spec`` is not such a string. Errors name ``field``."""
    parsed = parse_weight_spec(spec)
    if parsed is None:
        return None
    path, name = parsed
    check_generator(name, field)
    try:
        stats = load_class_stats(path)
        return class_weights_from_stats(stats, name, path)
    except (FileNotFoundError, KeyError) as e:
        raise type(e)(f'{field}: {e.args[0]}') from None


def weight_table(stats: Dict, names: Sequence[str]) -> str:
    """Per-class weights of several generators, one line a class."""
    columns = {n: class_weights_from_stats(stats, n) for n in names}
    classes = stats.get('classes') or [
        f'class{i}' for i in range(len(stats['pixel_counts']))
    ]
    width = max(len(str(c)) for c in classes)
    head = f'{"id":>3} {"class":<{width}} ' + ' '.join(
        f'{n:>12}' for n in names)
    lines = [head]
    for i, cls in enumerate(classes):
        lines.append(f'{i:>3} {str(cls):<{width}} ' + ' '.join(
            f'{columns[n][i]:>12.5g}' for n in names))
    return '\n'.join(lines)
