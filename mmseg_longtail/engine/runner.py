"""mmengine's Runner with safe checkpoint loading and atomic checkpoint
writes (selected by ``runner_type`` in ``configs/_base_/default_runtime.py``).
"""
import os.path as osp
from typing import Optional

from mmengine.runner import Runner
from mmseg.registry import RUNNERS

from mmseg_longtail.utils.run_files import atomic_local_save
from .checkpoint import checkpoint_safe_globals, is_local


@RUNNERS.register_module()
class SafeCheckpointRunner(Runner):
    """:class:`mmengine.runner.Runner` whose checkpoint I/O is safe.

    * ``load_checkpoint`` (``load_from``, ``--resume``, tools/test.py) runs
      inside :func:`~mmseg_longtail.engine.checkpoint.checkpoint_safe_globals`:
      torch's safe loader (``weights_only=True``, the default of torch >=
      2.6) accepts mmengine's own checkpoint objects and refuses anything
      else;
    * ``save_checkpoint`` writes a local file under a temporary name and
      renames it once complete, so ``iter_<N>.pth`` is never truncated by a
      kill or a preemption while writing.

    Everything else is mmengine's. ``runner_type = 'Runner'`` in a config
    turns both off.
    """

    def load_checkpoint(self, filename: str, *args, **kwargs):
        with checkpoint_safe_globals():
            return super().load_checkpoint(filename, *args, **kwargs)

    def save_checkpoint(self,
                        out_dir: str,
                        filename: str,
                        file_client_args: Optional[dict] = None,
                        *args,
                        backend_args: Optional[dict] = None,
                        **kwargs) -> None:
        if file_client_args is not None or not is_local(
                out_dir, backend_args):
            # remote storage: its backend decides how a file appears
            return super().save_checkpoint(out_dir, filename,
                                           file_client_args, *args,
                                           backend_args=backend_args,
                                           **kwargs)

        def save(tmp_path: str) -> None:
            super(SafeCheckpointRunner, self).save_checkpoint(
                osp.dirname(tmp_path), osp.basename(tmp_path), None, *args,
                backend_args=backend_args, **kwargs)

        atomic_local_save(save, osp.join(out_dir, filename))
