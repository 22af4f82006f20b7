"""The plugin's fixes to the stack (mmseg_longtail/compat.py)."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import HistoryBuffer
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import CheckpointLoader
from mmseg.registry import MODELS

import mmseg_longtail
from mmseg_longtail import compat
from tests.fault_runs import free_port


def test_apply_is_idempotent():
    before = (compat.runner_module.init_dist,
              compat.runner_module.Runner.wrap_model,
              CheckpointLoader._schemes[''])
    compat.apply()
    after = (compat.runner_module.init_dist,
             compat.runner_module.Runner.wrap_model,
             CheckpointLoader._schemes[''])
    assert before == after


def test_local_checkpoint_with_mmengine_objects(tmp_path):
    # What mmengine's own checkpoints hold: numpy values, history buffers.
    path = tmp_path / 'ckpt.pth'
    torch.save(dict(meta=dict(iter=np.int64(7), hub=HistoryBuffer([1.0], [1])),
                    state_dict=dict(w=torch.ones(2))), path)
    if tuple(int(v) for v in torch.__version__.split('.')[:2]) >= (2, 6):
        with pytest.raises(Exception, match='weights_only'):
            torch.load(path)  # torch's safe default rejects them
    ckpt = CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    assert ckpt['meta']['iter'] == 7
    assert torch.equal(ckpt['state_dict']['w'], torch.ones(2))


def test_remote_loaders_keep_torch_default():
    for prefix in ('http://', 'https://'):
        loader = CheckpointLoader._get_checkpoint_loader(prefix + 'x/y.pth')
        assert loader is not compat.load_from_local
        assert loader.__module__ == 'mmengine.runner.checkpoint'


def test_config_scopes_resolve(repo_root):
    cfg = Config.fromstring(
        "_base_ = ['mmseg_longtail::_base_/datasets/synthetic.py', "
        "'mmseg::_base_/models/fcn_unet_s5-d16.py']\n", '.py')
    assert cfg.train_dataloader.dataset.type == 'SyntheticLongTailDataset'
    assert cfg.model.backbone.type == 'UNet'


def test_cpu_init_dist_needs_known_launcher():
    with pytest.raises(ValueError, match="launcher='mpi'"):
        compat.init_cpu_dist('mpi')


def test_cpu_process_group_destroyed_before_interpreter_exit(tmp_path):
    # What the runner leaves at exit: a DDP wrapper (whose reducer holds the
    # group) reachable only through a reference cycle, as the Runner and its
    # hooks form. Unless the group is really destructed in the plugin's
    # atexit handler, its gloo threads live on into interpreter shutdown,
    # where a rank can abort ('terminate called without an active
    # exception'). A handler registered before init_cpu_dist runs after the
    # plugin's (atexit is last-in first-out) and lists the threads left.
    script = tmp_path / 'probe.py'
    script.write_text(textwrap.dedent("""
        import atexit
        import os
        import torch
        import torch.distributed as dist
        from mmseg_longtail import compat

        def report():
            names = [open(f'/proc/self/task/{t}/comm').read().strip()
                     for t in os.listdir('/proc/self/task')]
            print('alive at exit:', dist.is_initialized())
            print('gloo threads at exit:',
                  sorted(n for n in names if 'gloo' in n))

        atexit.register(report)
        compat.init_cpu_dist('pytorch')

        class Holder:  # a cycle, like runner <-> hooks
            pass

        holder = Holder()
        holder.self = holder
        holder.model = torch.nn.parallel.DistributedDataParallel(
            torch.nn.Linear(2, 1))
        holder.model(torch.ones(1, 2)).sum().backward()
        del holder
        print('initialised:', dist.is_initialized())
        """))
    env = dict(os.environ, RANK='0', WORLD_SIZE='1', LOCAL_RANK='0',
               MASTER_ADDR='127.0.0.1', MASTER_PORT=str(free_port()))
    proc = subprocess.run([sys.executable, str(script)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'initialised: True' in proc.stdout
    assert 'alive at exit: False' in proc.stdout
    assert 'gloo threads at exit: []' in proc.stdout, proc.stdout


def test_head_checks_loss_class_counts():

    @MODELS.register_module(force=True)
    class _CountedLossForTest(nn.Module):

        def __init__(self, class_counts, loss_name='loss_counted'):
            super().__init__()
            self.class_counts = class_counts
            self._loss_name = loss_name

        def check_num_classes(self, num_classes):
            if len(self.class_counts) != num_classes:
                raise ValueError(f'class_counts has {len(self.class_counts)} '
                                 f'counts but num_classes is {num_classes}')

        def forward(self, *args, **kwargs):
            raise NotImplementedError

        @property
        def loss_name(self):
            return self._loss_name

    init_default_scope('mmseg')
    head = dict(type='FCNHead', in_channels=4, channels=4, num_classes=3,
                num_convs=1)
    MODELS.build(dict(head, loss_decode=dict(type='_CountedLossForTest',
                                             class_counts=[1, 2, 3])))
    with pytest.raises(ValueError, match='class_counts has 2 counts but '
                       'num_classes is 3'):
        MODELS.build(dict(head, loss_decode=[
            dict(type='CrossEntropyLoss'),
            dict(type='_CountedLossForTest', class_counts=[1, 2])
        ]))


def test_version():
    assert isinstance(mmseg_longtail.__version__, str)
