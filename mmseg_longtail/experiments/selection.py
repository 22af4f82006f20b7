"""The selection protocol: per (data set, model, loss) the variant with the
best mean selection-split metric over the sweep seeds (ties: the first) is
reported as mean +- sample std of its report-split runs over all seeds."""
import statistics
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from .cells import Cell, Group, sweep_cells
from .records import RunRecord
from .spec import Study


def mean_std(values: Sequence[float]) -> Tuple[float, Optional[float]]:
    """Mean and sample standard deviation (None for a single value)."""
    return statistics.mean(values), (statistics.stdev(values)
                                     if len(values) > 1 else None)


@dataclass
class Selection:
    """The variant chosen for one (data set, model, loss)."""
    group: Group
    variant: str
    metric: str
    scores: Dict[str, Optional[float]]  # tag -> mean over finished seeds
    complete: bool  # every sweep run finished: the choice is final


@dataclass
class Reported:
    """The numbers of a selected variant's runs."""
    group: Group
    variant: str
    label: str  # e.g. 'LDAM (s=5, DRW)'
    runs: List[RunRecord] = field(default_factory=list)

    @property
    def seeds(self) -> List[int]:
        return [int(r.cell['seed']) for r in self.runs]

    def values(self, key: str, split: str = 'report') -> List[float]:
        """``key`` of each seed's run on ``split``."""
        if split not in ('report', 'selection'):
            raise ValueError(f"split must be 'report' or 'selection', got "
                             f'{split!r}')
        metrics = [getattr(r, split) for r in self.runs]
        return [x.summary[key] for x in metrics
                if x is not None and x.summary.get(key) is not None]


def select_variants(study: Study, records: Dict[Cell, RunRecord],
                    metric: Optional[str] = None) -> Dict[Group, Selection]:
    """The chosen variant of each group with a finished sweep run."""
    metric = metric or study.select_metric
    by_group: Dict[Group, List[Cell]] = {}
    for c in sweep_cells(study):
        by_group.setdefault(c.group, []).append(c)
    out = {}
    for group, cells in by_group.items():
        scores: Dict[str, Optional[float]] = {}
        for v in study.losses[group[2]].variants:
            vals = [records[c].selection.summary.get(metric) for c in cells
                    if c.variant == v.tag and c in records]
            vals = [x for x in vals if x is not None]
            scores[v.tag] = statistics.mean(vals) if vals else None
        scored = [t for t, s in scores.items() if s is not None]
        if scored:  # max: the first of equal scores
            out[group] = Selection(group, max(scored, key=scores.get), metric,
                                   scores, all(c in records for c in cells))
    return out


def report_selected(study: Study, records: Dict[Cell, RunRecord],
                    selections: Dict[Group, Selection]
                    ) -> Dict[Group, Reported]:
    """Report-split runs of each group's selected variant, by seed."""
    out = {}
    for group, sel in selections.items():
        loss = study.losses[group[2]]
        runs = sorted((r for c, r in records.items()
                       if c.group == group and c.variant == sel.variant
                       and r.report is not None),
                      key=lambda r: int(r.cell['seed']))
        out[group] = Reported(group, sel.variant,
                              loss.label(loss.variant(sel.variant)), runs)
    return out
