"""Selection splits carved from a training split, kept apart by group.

Video data (CamVid) holds near-duplicate consecutive frames: a selection
split drawn frame by frame would leak them from training. :func:`carve`
therefore moves whole groups (e.g. sequences, by a regular expression on
the file name) and picks the set of groups whose size is closest to the
wanted fraction, deterministically for a seed. The lists are written once
as mmseg ``ann_file`` lists (one file stem a line) into the study's results
folder and committed, so every machine trains and selects on the same files.
"""
import os.path as osp
import random
import re
from typing import Dict, List, Sequence, Tuple

from .records import atomic_write_text
from .spec import Carve, DatasetSpec


def group_files(stems: Sequence[str], pattern: str) -> Dict[str, List[str]]:
    """Stems by group key: the first capture group of ``pattern`` (searched
    in the stem), or the whole match where it has no group."""
    regex = re.compile(pattern)
    groups: Dict[str, List[str]] = {}
    for stem in stems:
        m = regex.search(stem)
        if not m:
            raise ValueError(f'selection.carve.group {pattern!r} does not '
                             f'match the file {stem!r}')
        key = m.group(1) if regex.groups else m.group(0)
        groups.setdefault(key, []).append(stem)
    return groups


def carve(stems: Sequence[str], spec: Carve) -> Tuple[List[str], List[str]]:
    """(train, selection) stems: whole groups moved to the selection split,
    their total as close to ``spec.fraction`` of all files as any set of
    groups allows (ties: the first found in the seeded group order)."""
    groups = group_files(sorted(set(stems)), spec.group)
    if len(groups) < 2:
        raise ValueError(f'selection.carve: {len(groups)} group(s) found by '
                         f'{spec.group!r}; a carve needs at least two')
    keys = sorted(groups)
    random.Random(spec.seed).shuffle(keys)
    sizes = [len(groups[k]) for k in keys]
    total = sum(sizes)
    target = spec.fraction * total
    # reach[i]: bitset of the sums that subsets of the first i groups reach
    reach = [1]
    for s in sizes:
        reach.append(reach[-1] | (reach[-1] << s))
    best = min((t for t in range(1, total) if reach[-1] >> t & 1),
               key=lambda t: (abs(t - target), t))
    chosen, t = set(), best
    for i in range(len(keys), 0, -1):
        if reach[i - 1] >> t & 1:
            continue  # reachable without group i: leave it in training
        chosen.add(keys[i - 1])
        t -= sizes[i - 1]
    selection = sorted(s for k in chosen for s in groups[k])
    train = sorted(s for k in groups if k not in chosen for s in groups[k])
    return train, selection


def split_files(results_dir: str, dataset: str) -> Tuple[str, str]:
    """Paths of the (train, selection) lists of a data set of a study."""
    folder = osp.join(results_dir, 'splits', dataset)
    return osp.join(folder, 'train.txt'), osp.join(folder, 'selection.txt')


def train_stems(ds: DatasetSpec) -> List[str]:
    """File stems of a data set's training split, as mmseg lists them (the
    data set is built from its base config, with the study's data root)."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS

    import mmseg_longtail  # noqa: F401  (data set classes)
    init_default_scope('mmseg')
    cfg = Config.fromfile(ds.base).train_dataloader.dataset
    if ds.data_root:
        cfg.data_root = ds.data_root
    cfg.pipeline = []
    dataset = DATASETS.build(cfg)
    img_dir = dataset.data_prefix.get('img_path', '')
    suffix = getattr(dataset, 'img_suffix', '')
    stems = []
    for i in range(len(dataset)):
        path = dataset.get_data_info(i).get('img_path')
        if not path:
            raise ValueError(f'{ds.base}: data set {type(dataset).__name__} '
                             'has no image files; selection.carve needs a '
                             'file-based data set')
        rel = osp.relpath(path, img_dir)
        stems.append(rel[:-len(suffix)] if suffix and rel.endswith(suffix)
                     else rel)
    return stems


def ensure_carve(ds: DatasetSpec, results_dir: str,
                 dry_run: bool = False) -> Tuple[str, str]:
    """The (train, selection) list files of a carved data set, written from
    the training files when missing; existing lists are used as they are
    (they are the committed definition of the split)."""
    train_list, sel_list = split_files(results_dir, ds.key)
    if dry_run or (osp.isfile(train_list) and osp.isfile(sel_list)):
        return train_list, sel_list
    train, selection = carve(train_stems(ds), ds.carve)
    atomic_write_text(train_list, '\n'.join(train) + '\n')
    atomic_write_text(sel_list, '\n'.join(selection) + '\n')
    print(f'carved {ds.key}: {len(train)} training and {len(selection)} '
          f'selection files -> {osp.dirname(train_list)}', flush=True)
    return train_list, sel_list
