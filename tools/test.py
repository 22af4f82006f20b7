"""Test (evaluate) a checkpoint with mmseg's Runner (mmseg's command line)."""
import argparse
import os
import os.path as osp

from mmengine.config import DictAction
from mmengine.runner import Runner
from mmseg.registry import RUNNERS

from mmseg_longtail.engine.cpu_distributed import setup_cpu_distributed
from mmseg_longtail.engine.cpu_threads import set_cpu_threads
from mmseg_longtail.utils.config_scope import load_config


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='the dir to save the evaluation metrics and logs')
    parser.add_argument(
        '--out',
        type=str,
        help='save the predicted segmentation maps (PNG) to this folder')
    parser.add_argument(
        '--show-dir', help='save painted predictions to this folder')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, key=value pairs')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument(
        '--tta', action='store_true', help='test time augmentation')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint

    if args.show_dir:
        hooks = cfg.default_hooks
        if 'visualization' not in hooks:
            raise SystemExit('--show-dir needs a visualization hook in '
                             'default_hooks')
        hooks.visualization.draw = True
        cfg.visualizer['save_dir'] = args.show_dir
    if args.tta:
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    if args.out is not None:
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True

    setup_cpu_distributed(cfg, args.launcher)
    set_cpu_threads(cfg, 'test_dataloader')
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    runner.test()


if __name__ == '__main__':
    main()
