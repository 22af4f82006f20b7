"""Analysis behind the command lines in ``tools/analysis_tools/``.

One module per tool; the tools only parse arguments and call these.
Not imported by ``mmseg_longtail`` itself, as training does not need them.

* :mod:`.benchmark_losses`: time and memory of the losses against CE.
* :mod:`.benchmark_models`: step time and size of the model bases.
* :mod:`.class_stats`: class statistics of a config's split (or a label
  folder) written as JSON, and their frequency plot.
* :mod:`.plot_class_iou`: per-class IoU against training frequency.
* :mod:`.logit_adjust_sweep`: post-hoc logit adjustment's tau swept in one
  validation pass (table, plot, best-tau config).
"""
from . import (benchmark_losses, benchmark_models, class_stats,
               logit_adjust_sweep, plot_class_iou)

__all__ = [
    'benchmark_losses', 'benchmark_models', 'class_stats',
    'logit_adjust_sweep', 'plot_class_iou'
]
