"""Comparing losses on one's own data, as README shows it: the template
spec and data base of configs/own_data/ copied into a folder of the user's,
run there with tools/grid.py and tools/collect_results.py on a small data
set made here. Everything lands under that folder; the checkout is left as
it was."""
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO_ROOT
from tests.test_experiments.helpers import run_in_process

TEMPLATE = REPO_ROOT / 'configs' / 'own_data'
# the tools' main() in this process (from the user's folder): no
# interpreter start-up per call
run_tool = run_in_process
NUM_CLASSES = 3


def git_status() -> str:
    """The checkout's changes, ignored files included (a work_dirs/ there
    counts), byte-code caches aside."""
    out = subprocess.run(['git', 'status', '--porcelain', '--ignored'],
                         cwd=REPO_ROOT, capture_output=True, text=True,
                         check=True).stdout
    return '\n'.join(line for line in out.splitlines()
                     if '__pycache__' not in line
                     and '.pytest_cache' not in line)


def make_data(root: Path) -> None:
    """mmseg's layout, 32x32 images, a long tail (class 2 in a corner of
    some images) and unlabelled pixels."""
    rng = np.random.default_rng(0)
    for split, n in (('train', 10), ('val', 4)):
        (root / 'img_dir' / split).mkdir(parents=True)
        (root / 'ann_dir' / split).mkdir(parents=True)
        for i in range(n):
            label = np.zeros((32, 32), np.uint8)
            label[:, 16:] = 1
            if i % 3 == 0:
                label[:6, :6] = 2
            label[-2:] = 255
            img = rng.integers(0, 60, (32, 32, 3)).astype(np.uint8)
            img[label == 1] += 100
            img[label == 2] += 190
            Image.fromarray(img).save(root / 'img_dir' / split / f'f{i}.png')
            Image.fromarray(label).save(root / 'ann_dir' / split /
                                        f'f{i}.png')


def user_folder(tmp: Path) -> Path:
    """The template copied and edited as the README says: the data set's
    suffix and sizes, and a child spec with a small model, two losses
    without sweeps, one seed and six iterations."""
    make_data(tmp / 'data' / 'mine')
    for name in ('data.py', 'study.py'):
        shutil.copy(TEMPLATE / name, tmp / name)
    data = (tmp / 'data.py').read_text()
    for key, value in (('img_suffix', "'.png'"), ('crop_size', '(32, 32)'),
                       ('img_scale', '(32, 32)')):
        data, n = re.subn(rf'^{key} = .*$', f'{key} = {value}', data,
                          flags=re.M)
        assert n == 1, key
    data = data.replace('num_workers=2,\n    persistent_workers=True,',
                        'num_workers=0,')
    (tmp / 'data.py').write_text(data)
    (tmp / 'tiny.py').write_text('''_base_ = ['study.py']
name = 'tiny'
models = dict(unet=dict(
    base='mmseg_longtail::camvid_study/models/unet-s5-c8.py',
    name='unet-c8'))
losses = dict(_delete_=True, ce=_base_.losses.ce,
              pat=dict(_base_.losses.pat, sweep=None))
schedule = dict(iters=6)
seeds = [0]
selected_seeds = []
extra_seeds = dict(_delete_=True)
''')
    return tmp


@pytest.fixture(scope='module')
def own_study(tmp_path_factory):
    before = git_status()
    tmp = user_folder(tmp_path_factory.mktemp('own'))
    dry = run_tool([REPO_ROOT / 'tools' / 'grid.py', '--study', 'tiny.py',
                    '--dry-run'], cwd=tmp).stdout
    out = run_tool([REPO_ROOT / 'tools' / 'grid.py', '--study', 'tiny.py',
                    '--cfg-options', 'default_hooks.logger.interval=2'],
                   cwd=tmp).stdout
    page = run_tool([REPO_ROOT / 'tools' / 'collect_results.py', '--study',
                     'tiny.py', '--page'], cwd=tmp).stdout
    return tmp, dry, out, page, before


def test_runs_records_and_page_land_in_the_users_folder(own_study):
    tmp, dry, out, page, _ = own_study
    work = tmp / 'work_dirs' / 'tiny'
    assert f'{Path("work_dirs") / "tiny"}' in dry
    assert '2 cells selected' in out
    records = sorted((work / 'results' / 'runs').glob('*.json'))
    assert [json.loads(r.read_text())['cell']['loss'] for r in records] == [
        'ce', 'pat']
    for r in records:
        rec = json.loads(r.read_text())
        assert rec['study'] == 'tiny' and rec['iters'] == 6
        # every option that shaped the run is in its record
        assert rec['cfg_options'] == ['default_hooks.logger.interval=2']
        assert rec['report']['summary']['mIoU'] >= 0
    assert (work / 'results' / 'page.md').is_file()
    assert 'results/page.md' in page
    # the data base's own statistics file, written from the training split
    stats = json.loads((tmp / 'data' / 'mine' / 'class_stats.json')
                       .read_text())
    assert len(stats['pixel_counts']) == NUM_CLASSES
    # the schedule's iterations reached the rendered configs
    configs = list((work / '_grid' / 'configs').glob('ce_*.py'))
    assert len(configs) == 1 and 'max_iters=6' in configs[0].read_text()


def test_the_checkout_is_left_unchanged(own_study):
    *_, before = own_study
    assert git_status() == before


def test_paper_grid_plans_under_the_current_folder(tmp_path):
    before = git_status()
    out = run_tool([REPO_ROOT / 'tools' / 'grid.py', '--datasets', 'camvid',
                    '--models', 'unet', '--losses', 'ce', '--dry-run'],
                   cwd=tmp_path).stdout
    planned = re.findall(r'--work-dir (\S+)', out)
    assert planned and all(
        Path(p).resolve().is_relative_to(tmp_path.resolve())
        for p in planned), out
    assert str(REPO_ROOT / 'work_dirs') not in out
    assert git_status() == before


def test_a_crop_change_without_its_pipeline_names_the_keys(tmp_path):
    """A base that only changes crop_size keeps its parent's crop in the
    pipeline; the spec is refused naming the keys to redefine."""
    from mmseg_longtail.experiments.spec import SpecError, load_study
    tmp = user_folder(tmp_path)
    (tmp / 'small.py').write_text("_base_ = ['data.py']\n"
                                  'crop_size = (16, 16)\n')
    (tmp / 'small_study.py').write_text(
        "_base_ = ['tiny.py']\n"
        "datasets = dict(mine=dict(base='small.py'))\n")
    with pytest.raises(SpecError, match=r'small\.py: crop_size is \(16, 16\)'
                       r' but train_dataloader\.dataset\.pipeline\[4\] '
                       r'\(RandomCrop\) crops \(32, 32\).*`train_pipeline`'):
        load_study(str(tmp / 'small_study.py'))
