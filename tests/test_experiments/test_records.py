"""mmseg_longtail.experiments.records: run records round-trip and bad ones
are named; records of other versions' keys still load; the launcher's run
status."""
import json

import pytest

from mmseg_longtail.experiments import (Cell, RecordError, RunRecord,
                                        RunStatus, SplitMetrics)
from mmseg_longtail.experiments.records import load_run_records
from tests.test_experiments.helpers import C, camvid_study, fake_record


def _record(cell, sel, rep, study='s'):
    return RunRecord(
        study=study, name=f'r{cell.loss}{cell.variant}{cell.seed}',
        cell=cell.to_dict(), options={}, iters=10,
        selection=SplitMetrics('selection', dict(mIoU=sel, mIoU_tail=rep)),
        report=SplitMetrics('report', dict(mIoU=rep, mIoU_tail=sel)))


def test_record_round_trip_and_bad_records(tmp_path):
    rec = _record(Cell('d', 'm', 'pat', 'tau1', 3), 40.0, 30.0)
    rec.curve = [dict(iter=5, mIoU=20.0)]
    path = rec.save(str(tmp_path))
    back = RunRecord.load(path)
    assert back == rec and back.selection.summary['mIoU'] == 40.0
    assert load_run_records(str(tmp_path)) == [rec]
    assert load_run_records(None) == []
    raw = json.loads(open(path).read())
    assert raw['kind'] == 'mmseg_longtail.run_record' and raw['version'] == 1
    assert 'work_dir' not in raw
    bad = tmp_path / 'bad.json'
    for text, match in [
            (open(path).read()[:50], 'unreadable run record'),
            (json.dumps(dict(raw, version=9)), 'version 9'),
            (json.dumps(dict(raw, kind='other')), 'not a run record'),
            (json.dumps({k: v for k, v in raw.items() if k != 'report'}),
             r"lacks \['report'\]"),
            (json.dumps(dict(raw, selection=dict(x=1))), 'malformed'),
    ]:
        bad.write_text(text)
        with pytest.raises(RecordError, match=rf'bad\.json: .*{match}'):
            RunRecord.load(str(bad))
    # a bad file among the records is never skipped
    (tmp_path / 'runs' / 'zz.json').write_text('{')
    with pytest.raises(RecordError, match=r'zz\.json: unreadable'):
        load_run_records(str(tmp_path))


def test_old_record_with_a_load_average_loads(tmp_path):
    """Committed records written with a load average (a key that is no
    field now) still load, the key ignored."""
    results = tmp_path / 'results'
    st = camvid_study(results_dir=str(results))
    fake_record(results, st, C('ce', 0), 40.0, 10.0, [1.0] * 11)
    path = next((results / 'runs').glob('*.json'))
    raw = json.loads(path.read_text())
    raw['loadavg'] = [[1.0, 1.0, 1.0], [2.5, 1.0, 1.0]]
    path.write_text(json.dumps(raw))
    record = RunRecord.load(str(path))
    assert record.report.summary['mIoU'] == 40.0
    assert 'loadavg' not in record.to_json()


def test_run_status_round_trip_and_bad_files(tmp_path):
    """A work dir without a status has none; a written one reads back (keys
    that are no field ignored); a corrupt or cell-less one is named."""
    run = tmp_path / 'run'
    run.mkdir()
    assert RunStatus.read(str(run)) is None
    cell = Cell('d', 'm', 'pat', 'tau1', 1).to_dict()
    status = RunStatus(cell=cell, work_dir=str(run), state='running',
                       attempts=1).write()
    assert RunStatus.read(str(run)) == status
    status.update(state='done', wall_s=12.5)
    back = RunStatus.read(str(run))
    assert (back.state, back.wall_s, back.cell) == ('done', 12.5, cell)
    with pytest.raises(AttributeError, match="no field 'stat'"):
        status.update(stat='done')
    path = run / 'grid_status.json'
    path.write_text(json.dumps(dict(json.loads(path.read_text()),
                                    loadavg_start=[1.0])))
    assert RunStatus.read(str(run)) == back
    for text, match in (('{"cell": ', 'unreadable run status'),
                        (json.dumps(dict(state='done')), 'no `cell`')):
        path.write_text(text)
        with pytest.raises(RecordError,
                           match=rf'grid_status\.json: .*{match}'):
            RunStatus.read(str(run))
