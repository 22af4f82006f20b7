"""``mmseg_longtail::`` bases from a user folder outside the repository.

The config is README's scope example (read from README.md between
``<!-- scope-snippet:start/end -->``): data set, model, loss, runtime and
schedule bases of the plugin taken by scope. It must parse without the
plugin imported first (mmseg's own ``tools/train.py`` never imports it: the
installed start-up hook registers the scope), build in the ``mmseg_longtail``
registry scope mmengine gives those bases' dicts, and train with this
repository's ``tools/train.py`` and with mmseg's.
"""
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
REINSTALL = ('the mmseg_longtail_scope.pth start-up hook is not active in '
             'this environment: reinstall the package (pip install -e . or '
             'tools/install.sh)')


@pytest.fixture
def user_config(tmp_path) -> Path:
    """README's scope example as a config in a folder outside the repo."""
    text = (REPO_ROOT / 'README.md').read_text()
    block = text.split(START)[1].split(END)[0]
    code = re.fullmatch(r'\s*```python\n(.*?)```\s*', block, re.S).group(1)
    assert 'mmseg_longtail::' in code
    folder = tmp_path / 'my_project'
    folder.mkdir()
    path = folder / 'my_config.py'
    path.write_text(code)
    return path


def test_scope_bases_build_in_plugin_scope(user_config):
    """mmengine marks the dicts of scoped bases ``_scope_='mmseg_longtail'``
    and builds them in that registry scope: the data set, the model with
    the base's loss, and mmseg's visualizer must all be found (without the
    registry nodes: 'mmseg_longtail is not installed', then KeyError)."""
    import mmseg_longtail  # noqa: F401
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS, MODELS, VISUALIZERS

    cfg = Config.fromfile(str(user_config))
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


def test_scope_parses_before_plugin_import(user_config):
    """A fresh interpreter knows the scope before anything imports the
    plugin (the installed .pth hook), so mmengine parses the config."""
    code = (
        'import sys\n'
        'import mmengine.config.utils as u\n'
        "assert 'mmseg_longtail' in u.MODULE2PACKAGE, 'no hook'\n"
        'from mmengine.config import Config\n'
        f'cfg = Config.fromfile({str(user_config)!r}, '
        'import_custom_modules=False)\n'
        "assert 'mmseg_longtail' not in sys.modules\n"
        'print(cfg.train_dataloader.dataset.type)\n')
    proc = run_tool(['-c', code], cwd=user_config.parent, check=False)
    assert 'no hook' not in proc.stdout, REINSTALL
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert proc.stdout.strip().endswith('SyntheticLongTailDataset')


def mmseg_train_script() -> Path:
    import mmseg
    return Path(mmseg.__file__).parent / '.mim' / 'tools' / 'train.py'


@pytest.mark.parametrize('script', ['repo', 'mmseg'])
def test_train_from_user_folder(script, user_config):
    if script == 'repo':
        path = REPO_ROOT / 'tools' / 'train.py'
    else:
        path = mmseg_train_script()
        assert path.is_file(), (
            f'{path}: mmseg installed without its tools (.mim/tools)')
    work_dir = user_config.parent / 'work_dir'
    proc = run_tool([
        path, user_config.name, '--work-dir', work_dir, '--cfg-options'
    ] + TINY, cwd=user_config.parent, check=False)
    if 'does not support to load mmseg_longtail config' in proc.stdout:
        pytest.fail(REINSTALL)
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert 'is not installed' not in proc.stdout
    assert 'Iter(train) [2/2]' in proc.stdout
    assert 'decode.loss_pat' in proc.stdout  # the scoped loss base
    assert re.search(r'Iter\(val\) \[1/1\].*mIoU', proc.stdout)
    assert (work_dir / 'iter_2.pth').is_file()
