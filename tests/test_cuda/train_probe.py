"""A test-only hook for tests/test_cuda/test_training.py, imported through
``custom_imports`` (the repository root on PYTHONPATH): before training,
each rank writes ``<work_dir>/probe_rank<r>.json`` with the process
group's backend and size, the device of the weights, the number of SyncBN
layers and cuDNN's settings, so the test can check what the run trained
with."""
import json
import os.path as osp

import torch
from mmengine.dist import get_rank, get_world_size, is_distributed
from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class TrainProbeHook(Hook):

    priority = 'LOWEST'  # after ExactResumeHook set cuDNN up

    def before_train(self, runner) -> None:
        model = runner.model
        sync = sum(isinstance(m, torch.nn.SyncBatchNorm)
                   for m in model.modules())
        info = dict(
            backend=(torch.distributed.get_backend()
                     if is_distributed() else None),
            world_size=get_world_size(),
            device=str(next(model.parameters()).device),
            syncbn_layers=sync,
            wrapper=type(model).__name__,
            cudnn_benchmark=torch.backends.cudnn.benchmark,
            cudnn_deterministic=torch.backends.cudnn.deterministic,
            deterministic_algorithms=(
                torch.are_deterministic_algorithms_enabled()))
        path = osp.join(runner.work_dir, f'probe_rank{get_rank()}.json')
        with open(path, 'w') as f:
            json.dump(info, f)
