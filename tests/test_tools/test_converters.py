"""Dataset converters on tiny fixtures in the official on-disk formats."""
import json

import numpy as np
import pytest
from PIL import Image

import mmseg_longtail  # noqa: F401
from mmseg.registry import DATASETS
from mmseg_longtail.datasets.conversion import seeded_split
from mmseg_longtail.datasets.converters import (convert_camvid,
                                                convert_nyu_v2,
                                                convert_oxford_pet)
from tests.conftest import run_tool


def read(path):
    with Image.open(path) as img:
        return np.asarray(img), img.format, img.mode


def test_seeded_split_sizes_and_determinism():
    names = [f'n{i:03d}' for i in range(103)]
    a = seeded_split(names[::-1], seed=3)
    assert [len(a[s]) for s in ('train', 'val', 'test')] == [82, 10, 11]
    assert sorted(sum(a.values(), [])) == names
    assert a == seeded_split(names, seed=3)  # input order does not matter
    assert a != seeded_split(names, seed=4)
    with pytest.raises(ValueError, match='ratios'):
        seeded_split(names, ratios=(0.8, 0.1, 0.2))


# ------------------------------------------------------------- Oxford Pet
def make_pet(root, n=20, seed=0):
    rng = np.random.default_rng(seed)
    (root / 'images').mkdir(parents=True)
    (root / 'annotations' / 'trimaps').mkdir(parents=True)
    trimaps = {}
    for i in range(n):
        name = f'{"Abyssinian" if i % 2 else "beagle"}_{i + 1}'
        h, w = 10 + i % 3, 14
        img = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
        if i == 1:  # grayscale JPEG, as a few official files are
            Image.fromarray(img[..., 0]).save(root / 'images' / f'{name}.jpg')
        elif i == 2:  # PNG data behind a .jpg name
            Image.fromarray(img).convert('RGBA').save(
                root / 'images' / f'{name}.jpg', format='PNG')
        else:
            Image.fromarray(img).save(root / 'images' / f'{name}.jpg')
        trimap = rng.integers(1, 4, (h, w)).astype(np.uint8)
        Image.fromarray(trimap).save(
            root / 'annotations' / 'trimaps' / f'{name}.png')
        trimaps[name] = trimap
    # clutter of the official archives: a .mat in images/, macOS forks,
    # an image without trimap and a trimap without image
    (root / 'images' / 'beagle_1.mat').write_bytes(b'x')
    (root / 'annotations' / 'trimaps' / '._beagle_1.png').write_bytes(b'x')
    Image.fromarray(img).save(root / 'images' / 'no_trimap.jpg')
    Image.fromarray(trimap).save(root / 'annotations' / 'trimaps' / 'o.png')
    return trimaps


def test_oxford_pet_converter(tmp_path):
    trimaps = make_pet(tmp_path / 'src')
    out = tmp_path / 'out'
    splits = convert_oxford_pet(str(tmp_path / 'src'), str(out))
    assert {k: len(v) for k, v in splits.items()} == dict(
        train=16, val=2, test=2)
    assert sorted(sum(splits.values(), [])) == sorted(trimaps)
    for split, names in splits.items():
        assert (out / 'splits' / f'{split}.txt').read_text().split() == names
        for name in names:
            label, _, mode = read(out / 'ann_dir' / split / f'{name}.png')
            raw = trimaps[name]
            expected = np.select([raw == 2, raw == 1, raw == 3], [0, 1, 2])
            np.testing.assert_array_equal(label, expected)
            img, fmt, mode = read(out / 'img_dir' / split / f'{name}.jpg')
            assert (fmt, mode, img.shape) == ('JPEG', 'RGB', raw.shape + (3, ))
    # an RGB JPEG is copied byte for byte
    name = 'beagle_1'
    split = next(s for s, v in splits.items() if name in v)
    assert (out / 'img_dir' / split / f'{name}.jpg').read_bytes() == \
        (tmp_path / 'src' / 'images' / f'{name}.jpg').read_bytes()
    # seeded: same seed, same split; other seed, other split
    again = convert_oxford_pet(str(tmp_path / 'src'), str(tmp_path / 'out2'))
    assert again == splits
    other = convert_oxford_pet(str(tmp_path / 'src'), str(tmp_path / 'out3'),
                               seed=1)
    assert other != splits
    dataset = DATASETS.build(dict(
        type='OxfordPetDataset', data_root=str(out),
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val')))
    assert len(dataset) == 2
    assert set(np.unique(dataset.get_gt_seg_map(0))) <= {0, 1, 2}


def test_oxford_pet_rejects_bad_trimap(tmp_path):
    make_pet(tmp_path / 'src', n=3)
    bad = tmp_path / 'src' / 'annotations' / 'trimaps' / 'beagle_1.png'
    Image.fromarray(np.full((10, 14), 4, np.uint8)).save(bad)
    with pytest.raises(ValueError, match=r'beagle_1\.png.*\[4\]'):
        convert_oxford_pet(str(tmp_path / 'src'), str(tmp_path / 'o'))


# ----------------------------------------------------------------- CamVid
def make_segnet_camvid(root, sizes=dict(train=3, val=2, test=1), seed=0):
    rng = np.random.default_rng(seed)
    data = {}
    for split, n in sizes.items():
        (root / split).mkdir(parents=True)
        (root / f'{split}annot').mkdir()
        for i in range(n):
            name = f'0001TP_{split}_{i:03d}.png'
            img = rng.integers(0, 256, (9, 12, 3)).astype(np.uint8)
            label = rng.integers(0, 12, (9, 12)).astype(np.uint8)
            Image.fromarray(img).save(root / split / name)
            Image.fromarray(label).save(root / f'{split}annot' / name)
            data[(split, name[:-4])] = (img, label)
    return data


@pytest.mark.parametrize('img_format', ['jpg', 'png'])
def test_camvid_converter(tmp_path, img_format):
    data = make_segnet_camvid(tmp_path / 'CamVid')
    out = tmp_path / 'camvid'
    counts = convert_camvid(str(tmp_path / 'CamVid'), str(out), img_format)
    assert counts == dict(train=3, val=2, test=1)
    for (split, stem), (img, label) in data.items():
        got, _, mode = read(out / 'ann_dir' / split / f'{stem}.png')
        assert mode == 'L'
        np.testing.assert_array_equal(got, label)
        got_img, _, mode = read(
            out / 'img_dir' / split / f'{stem}.{img_format}')
        assert mode == 'RGB' and got_img.shape == img.shape
        if img_format == 'png':
            np.testing.assert_array_equal(got_img, img)
    dataset = DATASETS.build(dict(
        type='CamVidDataset', data_root=str(out), img_suffix=f'.{img_format}',
        data_prefix=dict(img_path='img_dir/train',
                         seg_map_path='ann_dir/train')))
    assert len(dataset) == 3
    raw = data[('train', '0001TP_train_000')][1]
    np.testing.assert_array_equal(dataset.get_gt_seg_map(0),
                                  np.where(raw == 11, 255, raw))


def test_camvid_converter_rejects_colour_labels(tmp_path):
    make_segnet_camvid(tmp_path / 'CamVid', sizes=dict(train=1))
    bad = next((tmp_path / 'CamVid' / 'trainannot').iterdir())
    Image.fromarray(np.full((9, 12), 12, np.uint8)).save(bad)
    with pytest.raises(ValueError, match='ids 0..11'):
        convert_camvid(str(tmp_path / 'CamVid'), str(tmp_path / 'o'))
    with pytest.raises(FileNotFoundError, match='trainannot'):
        convert_camvid(str(tmp_path / 'nothing'), str(tmp_path))


# ------------------------------------------------------------------- NYUv2
def make_nyu_mat(path, n=10, h=6, w=8, num_raw=20, seed=0):
    """A MATLAB v7.3 labelled file as h5py sees it (arrays transposed)."""
    h5py = pytest.importorskip('h5py')
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, h, w, 3)).astype(np.uint8)
    labels = rng.integers(0, num_raw + 1, (n, h, w)).astype(np.uint16)
    with h5py.File(path, 'w', userblock_size=512) as f:
        # MATLAB (H, W, 3, N) and (H, W, N), stored column-major
        f['images'] = images.transpose(0, 3, 2, 1)
        f['labels'] = labels.transpose(0, 2, 1)
        f['depths'] = np.zeros((n, w, h), np.float32)
    with open(path, 'r+b') as f:
        f.write(b'MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: '
                b'Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 .')
    return images, labels


def expected40(raw, map40):
    table = np.concatenate([[0], map40])[raw]
    return np.where(table == 0, 255, table - 1)


def test_nyu_v2_converter_standard_split(tmp_path):
    pytest.importorskip('h5py')
    from scipy.io import savemat
    images, labels = make_nyu_mat(tmp_path / 'labeled.mat')
    rng = np.random.default_rng(1)
    map40 = rng.integers(0, 41, 20)
    map40[:3] = [0, 40, 1]
    savemat(tmp_path / 'classMapping40.mat', dict(
        mapClass=map40[None].astype(np.float64),
        className=np.array([f'n{i}' for i in range(40)], dtype=object)))
    map13 = np.arange(40) % 13 + 1
    np.save(tmp_path / 'map13.npy', map13)
    savemat(tmp_path / 'splits.mat', dict(
        trainNdxs=np.array([[1], [2], [4], [5], [7], [9]], np.float64),
        testNdxs=np.array([[3], [6], [8], [10]], np.float64)))
    out = tmp_path / 'nyu_v2'
    splits = convert_nyu_v2(
        str(tmp_path / 'labeled.mat'), str(tmp_path / 'classMapping40.mat'),
        str(out), map13=str(tmp_path / 'map13.npy'),
        splits_file=str(tmp_path / 'splits.mat'))
    assert splits == dict(train=['0001', '0002', '0004', '0005', '0007',
                                 '0009'], test=['0003', '0006', '0008',
                                                '0010'])
    for split, names in splits.items():
        for name in names:
            i = int(name) - 1
            img, _, _ = read(out / 'img_dir' / split / f'{name}.png')
            np.testing.assert_array_equal(img, images[i])
            l40, _, _ = read(out / 'ann_dir40' / split / f'{name}.png')
            np.testing.assert_array_equal(l40, expected40(labels[i], map40))
            l13, _, _ = read(out / 'ann_dir13' / split / f'{name}.png')
            np.testing.assert_array_equal(
                l13, np.where(l40 == 255, 255, (l40 % 13)))
    for type_, ann, k in (('NYUv2Dataset', 'ann_dir40', 40),
                          ('NYUv2Dataset13', 'ann_dir13', 13)):
        dataset = DATASETS.build(dict(
            type=type_, data_root=str(out),
            data_prefix=dict(img_path='img_dir/test',
                             seg_map_path=f'{ann}/test')))
        assert len(dataset) == 4 and len(dataset.metainfo['classes']) == k
        gt = dataset.get_gt_seg_map(1)  # 0006
        np.testing.assert_array_equal(
            gt, read(out / ann / 'test' / '0006.png')[0])


def test_nyu_v2_converter_random_split_and_text_maps(tmp_path):
    pytest.importorskip('h5py')
    _, labels = make_nyu_mat(tmp_path / 'labeled.mat', num_raw=5)
    # "raw new" pairs, in shuffled order, with a comment
    (tmp_path / 'map40.txt').write_text(
        '# raw -> nyu40\n3 7\n1 1\n5 0\n2 40\n4 12\n')
    out = tmp_path / 'nyu_random'
    splits = convert_nyu_v2(
        str(tmp_path / 'labeled.mat'), str(tmp_path / 'map40.txt'), str(out),
        split='random', seed=0)
    assert {k: len(v) for k, v in splits.items()} == dict(
        train=8, val=1, test=1)
    name = splits['val'][0]
    got, _, _ = read(out / 'ann_dir40' / 'val' / f'{name}.png')
    np.testing.assert_array_equal(
        got, expected40(labels[int(name) - 1], np.array([1, 40, 7, 12, 0])))
    assert not (out / 'ann_dir13').exists()


def test_nyu_v2_converter_errors(tmp_path):
    pytest.importorskip('h5py')
    from scipy.io import savemat
    make_nyu_mat(tmp_path / 'labeled.mat', num_raw=20)
    np.save(tmp_path / 'short.npy', np.ones(10))
    mat, out = str(tmp_path / 'labeled.mat'), str(tmp_path / 'o')
    with pytest.raises(ValueError, match='exceeds the 10 entries'):
        convert_nyu_v2(mat, str(tmp_path / 'short.npy'), out, split='random')
    savemat(tmp_path / 'two.mat', dict(a=np.ones(20), b=np.ones(20)))
    with pytest.raises(ValueError, match='--map40-key'):
        convert_nyu_v2(mat, str(tmp_path / 'two.mat'), out, split='random')
    np.save(tmp_path / 'too_big.npy', np.full(20, 41))
    with pytest.raises(ValueError, match=r'0\.\.40'):
        convert_nyu_v2(mat, str(tmp_path / 'too_big.npy'), out,
                       split='random')
    np.save(tmp_path / 'ok.npy', np.ones(20))
    (tmp_path / 'splits.json').write_text(json.dumps(
        dict(train=[1, 2], test=[2, 3])))
    with pytest.raises(ValueError, match='overlap'):
        convert_nyu_v2(mat, str(tmp_path / 'ok.npy'),
                       splits_file=str(tmp_path / 'splits.json'))
    with pytest.raises(ValueError, match='needs --splits-file'):
        convert_nyu_v2(mat, str(tmp_path / 'ok.npy'))
    (tmp_path / 'not.mat').write_bytes(b'MATLAB 5.0 MAT-file')
    with pytest.raises(ValueError, match='v7.3'):
        convert_nyu_v2(str(tmp_path / 'not.mat'), str(tmp_path / 'ok.npy'),
                       split='random')


# --------------------------------------------------------- command lines
def test_converter_command_lines(tmp_path):
    """Each tool passes its flags to the package function unchanged."""
    make_segnet_camvid(tmp_path / 'CamVid', sizes=dict(train=2, val=1))
    log = run_tool([
        'tools/dataset_converters/camvid.py', tmp_path / 'CamVid',
        '--out-dir', tmp_path / 'camvid', '--img-format', 'png'
    ]).stdout
    assert "{'train': 2, 'val': 1}" in log
    assert sorted(p.name for p in (tmp_path / 'camvid' / 'img_dir' /
                                   'val').iterdir()) == [
                                       '0001TP_val_000.png']

    make_pet(tmp_path / 'pet', n=10)
    run_tool([
        'tools/dataset_converters/oxford_pet.py', tmp_path / 'pet',
        '--out-dir', tmp_path / 'pet_out', '--seed', '3', '--ratios', '0.6',
        '0.2', '0.2', '--nproc', '2'
    ])
    expected = convert_oxford_pet(str(tmp_path / 'pet'),
                                  str(tmp_path / 'pet_ref'), seed=3,
                                  ratios=(0.6, 0.2, 0.2))
    for split, names in expected.items():
        assert (tmp_path / 'pet_out' / 'splits' /
                f'{split}.txt').read_text().split() == names

    pytest.importorskip('h5py')
    make_nyu_mat(tmp_path / 'labeled.mat', n=5, num_raw=5)
    (tmp_path / 'map40.txt').write_text('1 2 3 4 5\n')
    np.save(tmp_path / 'map13.npy', np.arange(40) % 13 + 1)
    log = run_tool([
        'tools/dataset_converters/nyu_v2.py', tmp_path / 'labeled.mat',
        '--map40', tmp_path / 'map40.txt', '--map13', tmp_path / 'map13.npy',
        '--split', 'random', '--seed', '1', '--ratios', '0.4', '0.2', '0.4',
        '--out-dir', tmp_path / 'nyu'
    ]).stdout
    assert 'NYUv2: 5 frames (train 2, val 1, test 2)' in log
    expected = seeded_split([f'{i:04d}' for i in range(1, 6)],
                            (0.4, 0.2, 0.4), 1)
    for split, names in expected.items():
        assert sorted(p.stem for p in (tmp_path / 'nyu' / 'ann_dir13' /
                                       split).iterdir()) == names
