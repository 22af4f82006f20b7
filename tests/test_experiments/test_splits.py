"""mmseg_longtail.experiments.splits: the selection split carved from train
by whole groups of files (deterministic, disjoint), on CamVid's real
sequences and as the launcher writes it."""
import pytest

from mmseg_longtail.experiments import Carve
from mmseg_longtail.experiments.splits import carve, group_files
from tests.test_experiments.helpers import fake_stems


def test_carve_is_deterministic_disjoint_and_keeps_groups():
    stems = [f'{seq}_{i:04d}' for seq, n in (('A', 62), ('B', 101),
                                             ('C', 204), ('D', 30))
             for i in range(n)]
    spec = Carve(fraction=0.15, group=r'^([^_]+)_', seed=0)
    train, sel = carve(stems, spec)
    assert carve(list(reversed(stems)), spec) == (train, sel)
    assert not set(train) & set(sel)
    assert sorted(train + sel) == sorted(stems)
    # whole sequences only, as close to 15% of 397 (59.55) as sets allow:
    # A (62) beats D (30), A+D (92), B (101)
    assert {s.split('_')[0] for s in sel} == {'A'}
    assert not {s.split('_')[0] for s in sel} & {
        s.split('_')[0] for s in train}
    # another seed may pick another set of the same quality, never a split
    # sequence
    for seed in range(5):
        tr, se = carve(stems, Carve(0.5, r'^([^_]+)_', seed))
        groups = group_files(se, r'^([^_]+)_')
        assert all(len(v) == len([s for s in stems if s.startswith(k)])
                   for k, v in groups.items())
        assert abs(len(se) - 0.5 * len(stems)) <= 30
    with pytest.raises(ValueError, match='does not match'):
        carve(stems + ['nounderscore'], spec)
    with pytest.raises(ValueError, match='at least two'):
        carve(['A_1', 'A_2'], spec)


def test_carve_of_the_real_camvid_train_split(camvid_root):
    stems = sorted(p.stem for p in (camvid_root / 'ann_dir' / 'train'
                                    ).glob('*.png'))
    train, sel = carve(stems, Carve(0.15, r'^([^_]+)_', 0))
    # sequences 0001TP (62), 0006R0 (101), 0016E5 (204): 0001TP is the
    # closest whole-sequence set to 15% of 367
    assert len(sel) == 62 and all(s.startswith('0001TP') for s in sel)
    assert len(train) == 305


def test_carve_by_sequence(rendered):
    """Rendering the CamVid CPU study carves train once: sequence 0006R0
    (101 frames) is the selection split, the other 266 frames train; the
    lists go to the results folder."""
    work, _, _, stems = rendered
    folder = work / 'results' / 'splits' / 'camvid'
    train = (folder / 'train.txt').read_text().split()
    selection = (folder / 'selection.txt').read_text().split()
    assert len(selection) == 101 and len(train) == 266
    assert all(s.startswith('0006R0_') for s in selection)
    assert not any(s.startswith('0006R0_') for s in train)
    assert not set(train) & set(selection)
    assert sorted(train + selection) == sorted(stems['train'])
    assert selection == sorted(fake_stems('0006R0', 101))
