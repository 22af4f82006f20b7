"""Hands the runner's work dir to the metrics that write files."""
from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class MetricWorkDirHook(Hook):
    """Before each validation and test, call ``set_run_dir(work_dir,
    timestamp)`` on every metric of the loop's evaluator that has it
    (:class:`~mmseg_longtail.evaluation.LongTailIoUMetric`), so that its
    records land in ``<work_dir>/longtail_metrics`` of this run.

    A metric knows nothing of the runner otherwise; without this hook it
    writes only where its ``json_dir`` says. Selected by this package's
    ``configs/_base_/default_runtime.py``.
    """

    priority = 'VERY_LOW'

    @staticmethod
    def _hand_over(runner, loop) -> None:
        evaluator = getattr(loop, 'evaluator', None)
        for metric in getattr(evaluator, 'metrics', ()):
            set_run_dir = getattr(metric, 'set_run_dir', None)
            if callable(set_run_dir):
                set_run_dir(runner.work_dir, runner.timestamp)

    def before_val(self, runner) -> None:
        self._hand_over(runner, runner.val_loop)

    def before_test(self, runner) -> None:
        self._hand_over(runner, runner.test_loop)
