"""Configs from a user folder outside the repository.

* docs/runtime.md's scope example (<!-- scope-snippet:start/end -->):
  bases of the plugin taken by the ``mmseg_longtail::`` scope. This
  repository's tools parse configs with the scope known
  (:func:`mmseg_longtail.utils.config_scope.load_config`); mmengine alone
  does not know it, and the parse leaves mmengine as it was. What such bases
  define builds in the ``mmseg_longtail`` registry scope and trains.
* The same bases taken by file path with ``custom_imports``: the form that
  mmseg's own ``tools/train.py`` (which never imports the plugin) trains.
"""
import os.path as osp
import re
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, run_tool

START, END = '<!-- scope-snippet:start -->', '<!-- scope-snippet:end -->'
# Shrink the U-Net and the data so that each run takes seconds; the point
# is where the bases come from, not the model.
TINY = [
    'model.backbone.base_channels=8', 'model.decode_head.in_channels=8',
    'model.decode_head.channels=8', 'model.auxiliary_head.in_channels=16',
    'model.auxiliary_head.channels=8', 'train_dataloader.batch_size=2',
    'val_dataloader.batch_size=2', 'val_dataloader.dataset.length=2',
    'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
    'default_hooks.logger.interval=1', 'default_hooks.checkpoint.interval=2'
]


def readme_snippet() -> str:
    text = (REPO_ROOT / 'docs' / 'runtime.md').read_text()
    block = text.split(START)[1].split(END)[0]
    code = re.fullmatch(r'\s*```python\n(.*?)```\s*', block, re.S).group(1)
    assert 'mmseg_longtail::' in code
    return code


@pytest.fixture
def user_config(tmp_path) -> Path:
    """docs/runtime.md's scope example as a config outside the repo."""
    folder = tmp_path / 'my_project'
    folder.mkdir()
    path = folder / 'my_config.py'
    path.write_text(readme_snippet())
    return path


@pytest.fixture
def path_config(tmp_path) -> Path:
    """The same config with the bases as relative file paths to the
    checkout's configs/ (what mmseg's tools/train.py resolves)."""
    folder = tmp_path / 'my_project_paths'
    folder.mkdir()
    configs = osp.relpath(REPO_ROOT / 'configs', folder)
    code = readme_snippet().replace('mmseg_longtail::', f'{configs}/')
    assert 'mmseg_longtail::' not in code
    path = folder / 'my_config.py'
    path.write_text(code)
    return path


def test_scope_bases_build_in_plugin_scope(user_config):
    """mmengine marks the dicts of scoped bases ``_scope_='mmseg_longtail'``
    and builds them in that registry scope: the data set, the model with
    the base's loss, and mmseg's visualizer must all be found (without the
    registry nodes: 'mmseg_longtail is not installed', then KeyError)."""
    import mmseg_longtail  # noqa: F401
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS, MODELS, VISUALIZERS

    from mmseg_longtail.utils.config_scope import load_config
    cfg = load_config(str(user_config))
    dataset_cfg = dict(cfg.train_dataloader.dataset, length=2)
    assert dataset_cfg['_scope_'] == 'mmseg_longtail'
    init_default_scope(cfg.default_scope)
    dataset = DATASETS.build(dataset_cfg)
    assert type(dataset).__name__ == 'SyntheticLongTailDataset'
    model = MODELS.build(cfg.model)
    assert type(model.decode_head.loss_decode).__name__ == 'PATLoss'
    visualizer = VISUALIZERS.build(
        dict(cfg.visualizer, name='scope_test_visualizer'))
    assert type(visualizer).__name__ == 'SegLocalVisualizer'


def test_scope_is_known_only_while_parsing(user_config):
    """mmengine alone refuses the scope, also after the plugin's import;
    ``load_config`` parses it and leaves mmengine's table and lookup as
    they were."""
    code = (
        'from mmengine.config import Config\n'
        'import mmengine.config.config as c, mmengine.config.utils as u\n'
        'import mmseg_longtail\n'
        'from mmseg_longtail.utils.config_scope import load_config\n'
        'lookup, table = c.get_installed_path, dict(u.MODULE2PACKAGE)\n'
        'try:\n'
        f'    Config.fromfile({str(user_config)!r})\n'
        "    print('parsed without the scope')\n"
        'except AssertionError as e:\n'
        "    print('refused:', e)\n"
        f'cfg = load_config({str(user_config)!r})\n'
        'print(cfg.train_dataloader.dataset.type)\n'
        'assert c.get_installed_path is lookup\n'
        'assert dict(u.MODULE2PACKAGE) == table\n')
    proc = run_tool(['-c', code], cwd=user_config.parent)
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith(
        'refused: mmengine does not support to load mmseg_longtail config')
    assert lines[-1] == 'SyntheticLongTailDataset'


def mmseg_train_script() -> Path:
    import mmseg
    return Path(mmseg.__file__).parent / '.mim' / 'tools' / 'train.py'


@pytest.mark.parametrize('script', ['repo', 'mmseg'])
def test_train_from_user_folder(script, user_config, path_config):
    if script == 'repo':
        path, config = REPO_ROOT / 'tools' / 'train.py', user_config
    else:
        path, config = mmseg_train_script(), path_config
        assert path.is_file(), (
            f'{path}: mmseg installed without its tools (.mim/tools)')
    work_dir = config.parent / 'work_dir'
    proc = run_tool([
        path, config.name, '--work-dir', work_dir, '--cfg-options'
    ] + TINY, cwd=config.parent, check=False)
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert 'is not installed' not in proc.stdout
    assert 'Iter(train) [2/2]' in proc.stdout
    assert 'decode.loss_pat' in proc.stdout  # the loss base
    assert re.search(r'Iter\(val\) \[1/1\].*mIoU', proc.stdout)
    assert (work_dir / 'iter_2.pth').is_file()
