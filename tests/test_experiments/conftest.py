"""Fixtures of the experiment-layer tests (helpers: helpers.py)."""
from pathlib import Path

import pytest

from mmseg_longtail.experiments import load_study
from tests.test_experiments.helpers import (GRID, camvid_study, fake_camvid,
                                            write_stats_file)


@pytest.fixture(scope='session')
def grid():
    """The paper grid's study."""
    return load_study(GRID)


@pytest.fixture(scope='session')
def rendered(tmp_path_factory):
    """The 27 rendered configs of the CamVid CPU study (no training) on a
    CamVid layout of empty files with the real training sequences, with a
    stats file holding the counts of the carved training split: (work root,
    stats file, plan, split -> stems)."""
    from mmseg_longtail.experiments.launch import make_plan
    work = tmp_path_factory.mktemp('study')
    data = work / 'camvid'
    stems = fake_camvid(data)
    st = camvid_study(work_root=str(work), results_dir=str(work / 'results'),
                      data_root=str(data))
    stats = write_stats_file(Path(st.datasets['camvid'].class_stats_file))
    return work, stats, make_plan(st), stems
