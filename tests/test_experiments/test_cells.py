"""mmseg_longtail.experiments.cells: the cells of a study, their order and
names, further seeds waiting for their sweep, selection by patterns."""
import re

import pytest

from mmseg_longtail.experiments import (Cell, filter_cells, plan_cells,
                                        run_name, sweep_cells)
from tests.test_experiments.helpers import TAGS, TAIL, C, camvid_study


# ------------------------------------------------------------ paper grid
def test_sweep_cells_and_names(grid):
    n_variants = sum(len(lo.variants) for lo in grid.losses.values())
    cells = sweep_cells(grid)
    # every setting on 5 models x 4 data sets at seed 0, each once
    assert len(cells) == n_variants * 5 * 4 and len(set(cells)) == len(cells)
    cell = Cell('camvid', 'unet', 'ldam', 's5-drw', 0)
    assert run_name(grid, cell) == (
        'ldam-s5-drw_unet-s5-d16_fcn-noaux_1xb4-30k_camvid-360x480_seed0')
    assert Cell.from_dict(cell.to_dict()) == cell
    assert cell.key == 'camvid/unet/ldam:s5-drw/seed0'
    assert cell.group == ('camvid', 'unet', 'ldam')


def test_further_seeds_wait_for_the_sweep(grid):
    cells, pending = plan_cells(grid)
    # CE has one setting: its further seeds are planned at once
    assert Cell('pet', 'unet', 'ce', '', 2) in cells
    assert ('pet', 'unet', 'pat') in pending
    assert not any(c.loss == 'pat' and c.seed > 0 for c in cells)
    cells, pending = plan_cells(grid, {('pet', 'unet', 'pat'): 'tau5'})
    assert ('pet', 'unet', 'pat') not in pending
    extra = [c for c in cells if c.group == ('pet', 'unet', 'pat')
             and c.seed > 0]
    assert extra == [Cell('pet', 'unet', 'pat', 'tau5', 1),
                     Cell('pet', 'unet', 'pat', 'tau5', 2)]
    assert cells.index(extra[0]) > max(
        cells.index(c) for c in sweep_cells(grid))


# ------------------------------------------------------- CamVid CPU study
def test_camvid_cells_order_and_patterns():
    st = camvid_study()
    cells, pending = plan_cells(st)
    # the 25 settings at seed 0 (CE first, then the spec's order), then
    # CE's seeds 1 and 2; the 12 swept losses wait for their sweep
    sweep = [C(lo, 0, t) for lo in TAGS for t in TAGS[lo]]
    assert len(sweep) == 25
    assert cells == sweep + [C('ce', 1), C('ce', 2)]
    assert len(cells) == 27 == len(set(cells))
    assert pending == [('camvid', 'unet', lo) for lo in TAGS if lo != 'ce']
    # once a loss's setting is selected its seeds 1 and 2 are planned too,
    # after the sweep, seed by seed
    cells, pending = plan_cells(st, {('camvid', 'unet', 'pat'): 'tau2'})
    assert cells == sweep + [C('ce', 1), C('pat', 1, 'tau2'), C('ce', 2),
                             C('pat', 2, 'tau2')]
    assert ('camvid', 'unet', 'pat') not in pending and len(pending) == 11
    chosen = {('camvid', 'unet', lo): TAGS[lo][-1] for lo in TAGS
              if lo != 'ce'}
    cells, pending = plan_cells(st, chosen)
    assert pending == [] and len(cells) == 25 + 2 * 13 == 51
    assert cells[25:] == [C(lo, s, TAGS[lo][-1]) for s in (1, 2)
                          for lo in TAGS]
    # selection of cells by globs: a loss key or <loss>:<tag>
    assert filter_cells(st, cells, losses=['ldam:s5*'], seeds=[0]) == [
        C('ldam', 0, 's5-drw')]
    assert filter_cells(st, cells, losses=['c*'], seeds=[2]) == [
        C('ce', 2), C('cb', 2, 'b0.9999-img'),
        C('cbfocal', 2, 'b0.9999-img')]
    assert len(filter_cells(st, cells, losses=['ldam'])) == 4
    for axis, pattern in (('models', 'deeplab*'), ('losses', 'cb_median'),
                          ('losses', 'ldam_s1')):
        with pytest.raises(ValueError, match=rf"{re.escape(repr(pattern))} "
                           'matches none'):
            filter_cells(st, cells, **{axis: [pattern]})
    # names: the setting's tag, the model, batch, schedule, data and crop
    assert run_name(st, C('ce', 0)) == f'ce{TAIL}_seed0'
    assert run_name(st, C('ldam', 0, 's5-drw')) == f'ldam-s5-drw{TAIL}_seed0'
    assert run_name(st, C('cb', 2, 'b0.9999-img')) == (
        f'cb-b0.9999-img{TAIL}_seed2')
    assert run_name(st, C('bms', 0, 'tau0p5')) == f'bms-tau0p5{TAIL}_seed0'
    assert run_name(st, C('pat', 1, 'tau2')) == f'pat-tau2{TAIL}_seed1'
