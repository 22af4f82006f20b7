"""The experiment layer: specs, cells, configs, runs, tables (docs/grid.md)."""
from .cells import Cell, filter_cells, plan_cells, run_name, sweep_cells
from .collect import gather
from .records import RecordError, RunRecord, RunStatus, SplitMetrics
from .selection import select_variants
from .spec import Carve, SpecError, load_study

__all__ = [
    'Carve', 'Cell', 'RecordError', 'RunRecord', 'RunStatus', 'SpecError',
    'SplitMetrics', 'filter_cells', 'gather', 'load_study', 'plan_cells',
    'run_name', 'select_variants', 'sweep_cells'
]
