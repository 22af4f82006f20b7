"""class_stats.py prints and writes class weights (counting or from an
existing statistics file); the written lists load as any loss's
class_weight, mmseg's own included."""
import json

import numpy as np
import pytest
from mmseg.registry import MODELS

import mmseg_longtail  # noqa: F401
from mmseg_longtail.utils import class_weights_from_stats
from tools.analysis_tools.class_stats import main

LABELS = [[[0, 0, 0, 1]], [[0, 2, 2, 9]], [[1, 1, 1, 1]]]


@pytest.fixture
def ann_dir(tmp_path):
    from PIL import Image
    folder = tmp_path / 'ann'
    folder.mkdir()
    for i, lab in enumerate(LABELS):
        Image.fromarray(np.asarray(lab, np.uint8)).save(folder / f'{i}.png')
    return folder


def test_count_then_weights(ann_dir, tmp_path, capsys):
    out, wdir = tmp_path / 's.json', tmp_path / 'w'
    stats = main(['--ann-dir', str(ann_dir), '--num-classes', '3',
                  '--ignore-index', '9', '--out', str(out), '--workers', '1',
                  '--weights', 'mfb', 'enet', '--weights-dir', str(wdir)])
    printed = capsys.readouterr().out
    assert 'mfb' in printed and 'enet' in printed
    saved = json.loads(out.read_text())
    assert saved['image_pixel_totals'] == [7, 8, 3]
    assert saved['image_files'] == ['0.png', '1.png', '2.png']
    for name in ('mfb', 'enet'):
        written = json.loads((wdir / f'{name}.json').read_text())
        np.testing.assert_allclose(written,
                                   class_weights_from_stats(stats, name))
        # a plain list: mmseg's own CrossEntropyLoss reads the file
        ce = MODELS.build(dict(type='CrossEntropyLoss',
                               class_weight=str(wdir / f'{name}.json')))
        np.testing.assert_allclose(ce.class_weight, written)


def test_weights_of_an_existing_file(ann_dir, tmp_path, capsys):
    out = tmp_path / 's.json'
    main(['--ann-dir', str(ann_dir), '--num-classes', '3', '--ignore-index',
          '9', '--out', str(out), '--workers', '1'])
    capsys.readouterr()
    weights = main(['--stats', str(out), '--weights', 'inverse'])
    np.testing.assert_allclose(weights['inverse'],
                               np.array([11 / 4, 11 / 5, 11 / 2]) * 3 /
                               (11 / 4 + 11 / 5 + 11 / 2))
    assert 'inverse' in capsys.readouterr().out


@pytest.mark.parametrize('argv, message', [
    (['--stats', 's.json'], '--stats takes --weights'),
    (['--stats', 's.json', '--weights', 'mfb', '--ann-dir', 'x'],
     '--stats takes --weights'),
    (['--ann-dir', 'x', '--num-classes', '3'], '--out is required'),
    (['--stats', 's.json', '--weights', 'median'], 'invalid choice'),
])
def test_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit):
        main(argv)
    assert message in capsys.readouterr().err
