"""Selection splits carved from a training split by whole groups of files
(near-duplicate video frames stay together), kept as committed mmseg
``ann_file`` lists in the results folder so every machine uses the same."""
import os.path as osp
import random
import re
from typing import Dict, List, Sequence, Tuple

from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS

from .records import atomic_write_text
from .spec import Carve, DatasetSpec


def group_files(stems: Sequence[str], pattern: str) -> Dict[str, List[str]]:
    """Stems by the first group of ``pattern`` (or its whole match)."""
    regex = re.compile(pattern)
    groups: Dict[str, List[str]] = {}
    for stem in stems:
        m = regex.search(stem)
        if not m:
            raise ValueError(f'selection.carve.group {pattern!r} does not '
                             f'match the file {stem!r}')
        groups.setdefault(m.group(1 if regex.groups else 0), []).append(stem)
    return groups


def carve(stems: Sequence[str], spec: Carve) -> Tuple[List[str], List[str]]:
    """(train, selection) stems: the whole groups whose size is closest to
    ``spec.fraction`` of all files go to selection (ties: seeded order)."""
    groups = group_files(sorted(set(stems)), spec.group)
    if len(groups) < 2:
        raise ValueError(f'selection.carve: {len(groups)} group(s) found by '
                         f'{spec.group!r}; a carve needs at least two')
    keys = sorted(groups)
    random.Random(spec.seed).shuffle(keys)
    sizes = [len(groups[k]) for k in keys]
    total = sum(sizes)
    # reach[i]: bitset of the sums that subsets of the first i groups reach
    reach = [1]
    for s in sizes:
        reach.append(reach[-1] | (reach[-1] << s))
    t = min((t for t in range(1, total) if reach[-1] >> t & 1),
            key=lambda t: (abs(t - spec.fraction * total), t))
    chosen = set()
    for i in range(len(keys), 0, -1):
        if not reach[i - 1] >> t & 1:  # needs group i
            chosen.add(keys[i - 1])
            t -= sizes[i - 1]
    selection = sorted(s for k in chosen for s in groups[k])
    train = sorted(s for k in groups if k not in chosen for s in groups[k])
    return train, selection


def train_stems(ds: DatasetSpec) -> List[str]:
    """File stems of a data set's training split as mmseg lists them."""
    init_default_scope('mmseg')
    cfg = Config.fromfile(ds.base).train_dataloader.dataset
    if ds.data_root:
        cfg.data_root = ds.data_root
    cfg.pipeline = []
    dataset = DATASETS.build(cfg)
    paths = [dataset.get_data_info(i).get('img_path')
             for i in range(len(dataset))]
    if not all(paths):
        raise ValueError(f'{ds.base}: data set {type(dataset).__name__} '
                         'has no image files; selection.carve needs a '
                         'file-based data set')
    suffix = getattr(dataset, 'img_suffix', '') or ''
    rels = [osp.relpath(p, dataset.data_prefix.get('img_path', ''))
            for p in paths]
    return [r[:len(r) - len(suffix)] if r.endswith(suffix) else r
            for r in rels]


def ensure_carve(ds: DatasetSpec, results_dir: str) -> Tuple[str, str]:
    """The (train, selection) list files of a carved data set, written from
    the training files when missing (existing ones define the split)."""
    folder = osp.join(results_dir, 'splits', ds.key)
    paths = osp.join(folder, 'train.txt'), osp.join(folder, 'selection.txt')
    if not all(map(osp.isfile, paths)):
        lists = carve(train_stems(ds), ds.carve)
        for path, stems in zip(paths, lists):
            atomic_write_text(path, '\n'.join(stems) + '\n')
        print(f'carved {ds.key}: {len(lists[0])} training and '
              f'{len(lists[1])} selection files -> {folder}', flush=True)
    return paths
