"""The experiment layer: study specs -> cells -> rendered configs -> runs
-> run records -> tables and pages (docs/grid.md).

Modules: :mod:`.spec` (specs), :mod:`.cells` (expansion, names),
:mod:`.render` (configs), :mod:`.splits` (carved selection splits),
:mod:`.records` (every on-disk file), :mod:`.launch` (running cells),
:mod:`.collect` (reading runs), :mod:`.selection` (the protocol),
:mod:`.tables` and :mod:`.page` (output), :mod:`.commands` (the tools).
"""
from .cells import Cell, filter_cells, plan_cells, run_name, sweep_cells
from .collect import Results, gather
from .records import RecordError, RunRecord, RunStatus, SplitMetrics
from .selection import Selection, report_selected, select_variants
from .spec import (Carve, DatasetSpec, LossSpec, ModelSpec, SpecError, Study,
                   Variant, load_study)

__all__ = [
    'Carve', 'Cell', 'DatasetSpec', 'LossSpec', 'ModelSpec', 'RecordError',
    'Results', 'RunRecord', 'RunStatus', 'Selection', 'SpecError',
    'SplitMetrics', 'Study', 'Variant', 'filter_cells', 'gather',
    'load_study', 'plan_cells', 'report_selected', 'run_name',
    'select_variants', 'sweep_cells'
]
