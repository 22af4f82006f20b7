"""The one-pass tau sweep equals K separate evaluations of the logit-
adjusted model; the tool writes its table, plot, JSON and best-tau config."""
import json

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, load_checkpoint
from mmseg.registry import METRICS, MODELS

import mmseg_longtail  # noqa: F401
from mmseg_longtail.analysis.logit_adjust_sweep import (_prior_counts,
                                                        run_sweep,
                                                        write_best_config)
from mmseg_longtail.engine import checkpoint_safe_globals
from tests.tiny_runner import build_runner, tiny_cfg

COUNTS = [5000, 1000, 300, 40, 2]
TAUS = [0.0, 0.5, 1.0, 2.0]
EVALUATOR = dict(type='LongTailIoUMetric', class_counts=COUNTS,
                 save_json=False)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A config file and a checkpoint of 3 training iterations."""
    work = tmp_path_factory.mktemp('la')
    cfg = tiny_cfg(work / 'run', max_iters=3, checkpoint_interval=3,
                   evaluator=EVALUATOR)
    cfg.experiment_name = 'logit_adjust_sweep'
    build_runner(cfg).train()
    path = work / 'tiny.py'
    cfg.dump(str(path))
    return str(path), str(work / 'run' / 'iter_3.pth')


def separate_evaluation(config, checkpoint, tau):
    """The logit-adjusted model at ``tau`` through the metric's own
    process(): what tools/test.py would report, unrounded."""
    cfg = Config.fromfile(config)
    init_default_scope('mmseg')
    cfg.model.type = 'LogitAdjustedEncoderDecoder'
    cfg.model.test_cfg.logit_adjust = dict(class_counts=COUNTS, tau=tau)
    model = MODELS.build(cfg.model)
    with checkpoint_safe_globals():
        load_checkpoint(model, checkpoint, map_location='cpu')
    model.eval()
    loader = Runner.build_dataloader(cfg.val_dataloader)
    metric = METRICS.build(dict(EVALUATOR))
    metric.dataset_meta = loader.dataset.metainfo
    with torch.no_grad():
        for data in loader:
            # as mmengine's Evaluator passes them: plain dicts
            metric.process(data, [s.to_dict() for s in model.test_step(data)])
    return metric.summarize(metric.per_class_metrics(metric.results))


def test_one_pass_equals_separate_evaluations(trained):
    config, checkpoint = trained
    result = run_sweep(config, checkpoint, TAUS, progress=False)
    assert result.prior_source == 'val_evaluator.class_counts'
    assert set(result.groups) == {'head', 'body', 'tail'}
    for tau, summary in zip(TAUS, result.summaries):
        assert summary == separate_evaluation(config, checkpoint, tau)
    # tau changes the scores (the prior is far from uniform)
    assert len({s['aAcc'] for s in result.summaries}) > 1


def test_tool_writes_table_plot_json_and_best_config(trained, tmp_path,
                                                     capsys):
    from tools.analysis_tools.logit_adjust_sweep import main
    config, checkpoint = trained
    stats = tmp_path / 'stats.json'
    stats.write_text(json.dumps(dict(pixel_counts=COUNTS,
                                     image_counts=[1] * 5)))
    best_cfg = tmp_path / 'cfgs' / 'best.py'
    result = main([config, checkpoint, '--taus', *map(str, TAUS),
                   '--class-counts', str(stats), '--out-dir',
                   str(tmp_path / 'out'), '--write-config', str(best_cfg)])
    out = capsys.readouterr().out
    assert 'mIoU_tail' in out and f'best tau by mIoU: {result.best_tau:g}' \
        in out
    saved = json.loads((tmp_path / 'out' / 'logit_adjust_sweep.json')
                       .read_text())
    assert saved['taus'] == TAUS and saved['best_tau'] == result.best_tau
    assert (tmp_path / 'out' / 'logit_adjust_sweep.png').stat().st_size > 0
    cfg = Config.fromfile(str(best_cfg))
    assert cfg.model.type == 'LogitAdjustedEncoderDecoder'
    assert cfg.model.test_cfg.mode == 'whole'  # the base's keys survive
    assert cfg.model.test_cfg.logit_adjust == dict(
        class_counts=str(stats), count_type='pixel', tau=result.best_tau)
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model)
    assert model.logit_adjustment.tau == result.best_tau


def test_write_config_needs_a_registered_variant(tmp_path):
    path = tmp_path / 'c.py'
    path.write_text("model = dict(type='SegTTAModel')\n")
    with pytest.raises(ValueError, match='no registered '
                       'LogitAdjustedSegTTAModel'):
        write_best_config(str(path), str(tmp_path / 'o.py'), 1.0, COUNTS)


def write_stats(path, counts=COUNTS):
    path.write_text(json.dumps(dict(pixel_counts=counts,
                                    image_counts=[1] * len(counts))))
    return str(path)


@pytest.mark.parametrize('named_by', ['val_evaluator', 'top level'])
def test_tool_reads_the_stats_file_the_config_names(trained, tmp_path,
                                                    capsys, named_by):
    """No --class-counts: the statistics file the evaluator (or, beside a
    plain IoUMetric, the config's top level) names is the prior, and the
    scores are those of the same counts given explicitly."""
    from tools.analysis_tools.logit_adjust_sweep import main
    config, checkpoint = trained
    stats = write_stats(tmp_path / 'stats.json')
    cfg = Config.fromfile(config)
    if named_by == 'val_evaluator':
        cfg.val_evaluator = dict(type='LongTailIoUMetric', save_json=False,
                                 class_stats_file=stats)
        source = 'val_evaluator.class_stats_file'
    else:
        cfg.val_evaluator = dict(type='IoUMetric')
        cfg.class_stats_file = stats
        source = 'class_stats_file'
    cfg.dump(str(tmp_path / 'named.py'))
    result = main([str(tmp_path / 'named.py'), checkpoint, '--taus', '0',
                   '1'])
    out = capsys.readouterr().out
    assert f'class counts (pixel) from {source} {stats}' in out.splitlines()
    assert result.prior_source == f'{source} {stats}'
    given = run_sweep(config, checkpoint, [0, 1], class_counts=COUNTS,
                      progress=False)
    assert result.summaries == given.summaries
    assert result.summaries[0] != result.summaries[1]


def test_a_missing_stats_file_is_named_with_its_field(trained, tmp_path):
    config, checkpoint = trained
    missing = str(tmp_path / 'nowhere.json')
    with pytest.raises(FileNotFoundError,
                       match=r"^class_stats_file: .*nowhere\.json"):
        run_sweep(config, checkpoint, [1.0], progress=False,
                  cfg_options=dict(class_stats_file=missing))


def counts_config(fields=None):
    """A config of only the fields the prior is looked up in, ``fields``
    (dotted keys) merged in."""
    cfg = Config(dict(
        model=dict(type='EncoderDecoder', test_cfg=dict(mode='whole'),
                   decode_head=dict(type='FCNHead', loss_decode=dict(
                       type='CrossEntropyLoss'))),
        val_evaluator=dict(type='IoUMetric'),
        test_evaluator=dict(type='IoUMetric')))
    cfg.merge_from_dict(fields or {})
    return cfg


@pytest.mark.parametrize('fields, split, source', [
    # the top-level statistics file comes before the evaluator's counts
    ({'class_stats_file': 'top.json',
      'val_evaluator': dict(type='LongTailIoUMetric', class_counts=[1, 2])},
     'val', 'class_stats_file'),
    ({'val_evaluator': [dict(type='CityscapesMetric'),
                        dict(type='LongTailIoUMetric',
                             class_stats_file='ev.json')]},
     'val', 'val_evaluator.class_stats_file'),
    # the split's own evaluator first
    ({'val_evaluator.class_counts': [1, 2],
      'test_evaluator.class_stats_file': 'test.json'},
     'test', 'test_evaluator.class_stats_file'),
    ({'model.decode_head.loss_decode': [
        dict(type='CrossEntropyLoss'),
        dict(type='ClassBalancedLoss', class_counts='loss.json')]},
     'val', 'model.decode_head.loss_decode.class_counts'),
    ({'model.test_cfg.logit_adjust': dict(class_counts='la.json'),
      'class_stats_file': 'top.json'},
     'val', 'model.test_cfg.logit_adjust.class_counts'),
])
def test_prior_counts_from_the_config(fields, split, source):
    counts, found = _prior_counts(counts_config(fields), None, split)
    assert found == source
    assert counts == {
        'class_stats_file': 'top.json',
        'val_evaluator.class_stats_file': 'ev.json',
        'test_evaluator.class_stats_file': 'test.json',
        'model.decode_head.loss_decode.class_counts': 'loss.json',
        'model.test_cfg.logit_adjust.class_counts': 'la.json'}[source]
    # the argument wins over the config
    assert _prior_counts(counts_config(fields), [3, 4], split) == (
        [3, 4], 'class_counts')


def test_no_counts_anywhere_names_the_fields_and_the_option():
    with pytest.raises(ValueError) as err:
        _prior_counts(counts_config(), None, 'val')
    message = str(err.value)
    for name in ('model.test_cfg.logit_adjust.class_counts',
                 'class_stats_file', 'evaluator', 'loss_decode',
                 '--class-counts'):
        assert name in message
