"""Test-only hook: every rank appends its training loss to a JSON-lines file.

mmengine logs rank 0's loss only; the distributed test needs every rank's to
compare a 2-process run with a 1-process run on the same global batch.
Imported through ``custom_imports`` (the repository root on PYTHONPATH).
"""
import json
import os.path as osp

from mmengine.dist import get_dist_info
from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class LossRecorderHook(Hook):
    """Write ``{iter, rank, world_size, batch, loss}`` per iteration to
    ``<work_dir>/losses_rank<r>.jsonl``."""

    priority = 'LOW'

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        rank, world_size = get_dist_info()
        record = dict(
            iter=runner.iter + 1,
            rank=rank,
            world_size=world_size,
            batch=len(data_batch['inputs']),
            img_path=[s.img_path for s in data_batch['data_samples']],
            loss=float(outputs['loss']))
        path = osp.join(runner.work_dir, f'losses_rank{rank}.jsonl')
        with open(path, 'a') as f:
            f.write(json.dumps(record) + '\n')
