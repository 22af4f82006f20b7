"""Convert the NYU Depth v2 labelled set to the mmseg layout (40 / 13 classes).

Inputs (none of them can be downloaded here):

* ``nyu_depth_v2_labeled.mat``: the official labelled set, a MATLAB v7.3
  (HDF5) file with ``images`` (480x640x3x1449 uint8) and ``labels``
  (480x640x1449, raw object ids 1..894, 0 unlabelled). HDF5 stores MATLAB
  arrays transposed, i.e. h5py sees (1449, 3, 640, 480) and (1449, 640,
  480); the converter transposes back.
* ``map40``: the raw-id -> 40-class map of Gupta et al. (CVPR 2013), e.g.
  ``classMapping40.mat`` (variable ``mapClass``, 1x894) of the public
  nyuv2-meta-data repository. Entry ``s`` (1-based) is the 40-class id
  (1..40, 0 = unlabelled) of raw id ``s``.
* ``map13`` (optional): a 40 -> 13 map in the same form (40 entries,
  values 1..13), e.g. ``class13Mapping.mat`` (``classMapping13.
  classMapping``). Class names of NYUv2Dataset13 follow that file's
  alphabetical order (bed, books, ceiling, ..., window).
* ``splits_file`` (for ``split='standard'``): ``splits.mat`` with
  ``trainNdxs`` (795) and ``testNdxs`` (654), 1-based frame indices, or a
  JSON file ``{"train": [...], "test": [...]}`` (1-based).

Map files may be ``.mat`` (v5 via scipy or v7.3 via h5py; the numeric
array is found automatically when there is exactly one candidate, else name
it with ``map40_key`` / ``map13_key``, dots for struct fields), ``.npy``
(a vector, or an (N, 2) array of ``raw new`` pairs) or text (``.txt`` /
``.csv``: N integers, or N lines ``raw new``). Error messages name the
command-line options of ``tools/dataset_converters/nyu_v2.py``.

Output (``out_dir``)::

    img_dir/{train,test}/0001.png     (RGB 640x480, lossless; name = 1-based
                                       frame index, as in trainNdxs)
    ann_dir40/{train,test}/0001.png   (0..39, 255 unlabelled)
    ann_dir13/{train,test}/0001.png   (0..12, 255; with map13)
    splits/{train,test}.txt

``split='random'`` writes the PAT paper's seeded 80/10/10 ``train``/
``val``/``test`` split over all 1449 frames instead.
"""
import json
import os.path as osp
import re
from typing import Dict, List, Optional, Sequence

import numpy as np

from mmseg_longtail.datasets.conversion import (label_lut, save_array_image,
                                                save_label_png, seeded_split,
                                                write_split_lists)

IGNORE = 255


# --------------------------------------------------------------- .mat files
def _is_hdf5(path: str) -> bool:
    import h5py
    return h5py.is_hdf5(path)


def _mat_arrays(path: str) -> Dict[str, np.ndarray]:
    """Every numeric array of a .mat file (v5 or v7.3), by dotted name."""
    found: Dict[str, np.ndarray] = {}
    if _is_hdf5(path):
        import h5py

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and obj.dtype.kind in 'biuf':
                found[name.replace('/', '.')] = np.asarray(obj)

        with h5py.File(path, 'r') as f:
            f.visititems(visit)
        return found
    from scipy.io import loadmat

    def walk(prefix, value):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f'{prefix}.{k}' if prefix else k, v)
        elif isinstance(value, np.ndarray) and value.dtype.kind in 'biuf':
            found[prefix] = value

    walk('', {k: v for k, v in loadmat(path, simplify_cells=True).items()
              if not k.startswith('__')})
    return found


def _pairs_to_vector(pairs: np.ndarray, source: str) -> np.ndarray:
    raw, new = pairs[:, 0].astype(np.int64), pairs[:, 1]
    if raw.min() < 1 or len(np.unique(raw)) != len(raw):
        raise ValueError(f'{source}: raw ids of the (raw, new) pairs must '
                         'be unique and >= 1')
    vec = np.zeros(raw.max(), dtype=np.float64)
    vec[raw - 1] = new
    return vec


def load_class_map(path: str, num_targets: int, key: Optional[str] = None,
                   option: str = '--map40') -> np.ndarray:
    """Read a class map; returns ``m`` with ``m[s - 1]`` = target id of raw
    id ``s`` (targets ``1..num_targets``, 0 = unlabelled)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'{option}: {path!r} not found')
    ext = osp.splitext(path)[1].lower()
    if ext == '.mat':
        arrays = _mat_arrays(path)
        if key is not None:
            if key not in arrays:
                raise KeyError(f'{option}: {path} has no numeric variable '
                               f'{key!r}; it has {sorted(arrays)}')
            vec = arrays[key]
        else:
            cands = {
                k: v for k, v in arrays.items()
                if v.size > 1 and np.all(v == np.round(v)) and v.min() >= 0
                and v.max() <= num_targets
            }
            if len(cands) != 1:
                raise ValueError(
                    f'{option}: cannot tell which variable of {path} is the '
                    f'map (candidates {sorted(cands)}); name it with '
                    f'{option}-key')
            vec = next(iter(cands.values()))
    elif ext == '.npy':
        vec = np.load(path)
    else:
        rows = []
        with open(path) as f:
            for line in f:
                tokens = re.split(r'[\s,;]+', line.split('#')[0].strip())
                if tokens != ['']:
                    rows.append([float(t) for t in tokens])
        widths = {len(r) for r in rows}
        vec = np.array(rows) if widths == {2} and len(rows) > 1 else \
            np.array([t for r in rows for t in r])
    vec = np.asarray(vec, dtype=np.float64)
    if vec.ndim == 2 and vec.shape[1] == 2 and vec.shape[0] > 2:
        vec = _pairs_to_vector(vec, f'{option} {path}')
    vec = vec.reshape(-1)
    if vec.size == 0 or not np.all(vec == np.round(vec)) or vec.min() < 0 \
            or vec.max() > num_targets:
        raise ValueError(f'{option}: {path} must map to integer ids in '
                         f'0..{num_targets} (0 = unlabelled)')
    return vec.astype(np.int64)


def map_to_lut(class_map: np.ndarray, num_sources: int) -> np.ndarray:
    """Lookup table over raw ids ``0..num_sources``: target id - 1 (0-based),
    255 for raw id 0 and for targets 0."""
    lut = np.full(num_sources + 1, IGNORE, dtype=np.uint8)
    lut[1:len(class_map) + 1] = np.where(class_map > 0, class_map - 1, IGNORE)
    return lut


def load_splits(path: str, num_frames: int) -> Dict[str, List[int]]:
    """train / test frame indices (1-based) from splits.mat or JSON."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'--splits-file: {path!r} not found')
    if path.lower().endswith('.json'):
        with open(path) as f:
            raw = json.load(f)
        splits = {k: raw.get(k) for k in ('train', 'test')}
    else:
        arrays = _mat_arrays(path)
        splits = {'train': arrays.get('trainNdxs'),
                  'test': arrays.get('testNdxs')}
    missing = [k for k, v in splits.items() if v is None]
    if missing:
        raise KeyError(f'--splits-file: {path} lacks {missing} (expected '
                       'trainNdxs/testNdxs or "train"/"test")')
    out = {k: np.asarray(v).reshape(-1).astype(np.int64).tolist()
           for k, v in splits.items()}
    flat = out['train'] + out['test']
    if min(flat) < 1 or max(flat) > num_frames:
        raise ValueError(f'--splits-file: indices must be 1-based within '
                         f'1..{num_frames}')
    if set(out['train']) & set(out['test']):
        raise ValueError('--splits-file: train and test overlap')
    return out


def convert_nyu_v2(mat: str,
                   map40: str,
                   out_dir: str = 'data/nyu_v2',
                   map40_key: Optional[str] = None,
                   map13: Optional[str] = None,
                   map13_key: Optional[str] = None,
                   split: str = 'standard',
                   splits_file: Optional[str] = None,
                   seed: int = 0,
                   ratios: Sequence[float] = (0.8, 0.1, 0.1)
                   ) -> Dict[str, List[str]]:
    """Convert the labelled frames of ``mat`` to 40 (and 13) classes.

    Args:
        mat: ``nyu_depth_v2_labeled.mat`` (v7.3 / HDF5).
        map40: raw (894) -> 40-class map file.
        out_dir: root of the mmseg layout.
        map40_key: variable of ``map40`` holding the map, when ambiguous.
        map13: 40 -> 13-class map file; None writes 40 classes only.
        map13_key: variable of ``map13`` holding the map, when ambiguous.
        split: 'standard' (795 / 654 frames of ``splits_file``) or
            'random' (seeded split by ``ratios``).
        splits_file: ``splits.mat`` (trainNdxs / testNdxs) or JSON.
        seed: seed of the random split.
        ratios: train / val / test fractions of the random split.

    Returns:
        dict split -> frame names ('0001', ...).
    """
    import h5py
    if not osp.isfile(mat) or not _is_hdf5(mat):
        raise ValueError(f'{mat!r} is not a MATLAB v7.3 (HDF5) file; '
                         'expected nyu_depth_v2_labeled.mat')
    class_map40 = load_class_map(map40, 40, map40_key, '--map40')
    lut13 = None
    if map13 is not None:
        class_map13 = load_class_map(map13, 13, map13_key, '--map13')
        if class_map13.size != 40:
            raise ValueError(f'--map13: expected 40 entries (one per NYU40 '
                             f'class), got {class_map13.size}')
        lut13 = label_lut(
            {i: m - 1 for i, m in enumerate(class_map13) if m > 0}, IGNORE)

    with h5py.File(mat, 'r') as f:
        for key in ('images', 'labels'):
            if key not in f:
                raise KeyError(f'{mat} has no {key!r} dataset')
        images, labels = f['images'], f['labels']
        n = images.shape[0]
        if images.ndim != 4 or images.shape[1] != 3 or labels.ndim != 3 \
                or labels.shape[0] != n or labels.shape[1:] != \
                images.shape[2:]:
            raise ValueError(
                f'unexpected shapes images {images.shape}, labels '
                f'{labels.shape}; expected (N, 3, W, H) and (N, W, H) as '
                'h5py reads MATLAB (H, W, 3, N) / (H, W, N)')
        names = [f'{i + 1:04d}' for i in range(n)]
        if split == 'standard':
            if splits_file is None:
                raise ValueError('--split standard needs --splits-file '
                                 '(splits.mat with trainNdxs/testNdxs)')
            index = load_splits(splits_file, n)
            splits = {k: [names[i - 1] for i in v] for k, v in index.items()}
        elif split == 'random':
            splits = seeded_split(names, ratios, seed)
        else:
            raise ValueError(f"split must be 'standard' or 'random', got "
                             f'{split!r}')
        lut40 = map_to_lut(class_map40, class_map40.size)
        for split_name, split_names in splits.items():
            for name in split_names:
                i = int(name) - 1
                rgb = np.asarray(images[i]).transpose(2, 1, 0)
                raw = np.asarray(labels[i]).T.astype(np.int64)
                if raw.max() > class_map40.size:
                    raise ValueError(
                        f'frame {name}: raw label {raw.max()} exceeds the '
                        f'{class_map40.size} entries of --map40 {map40}')
                label40 = lut40[raw]
                save_array_image(
                    rgb, osp.join(out_dir, 'img_dir', split_name,
                                  name + '.png'))
                save_label_png(
                    label40,
                    osp.join(out_dir, 'ann_dir40', split_name, name + '.png'))
                if lut13 is not None:
                    save_label_png(
                        lut13[label40],
                        osp.join(out_dir, 'ann_dir13', split_name,
                                 name + '.png'))
    write_split_lists(out_dir, splits)
    sizes = ', '.join(f'{k} {len(v)}' for k, v in splits.items())
    print(f'NYUv2: {n} frames ({sizes}) written to {out_dir}'
          f'{"" if lut13 is not None else " (40 classes only: no --map13)"}')
    return splits
