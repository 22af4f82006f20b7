"""A tiny mmseg model on the built-in synthetic data, built in-process.

For tests that need a real mmengine Runner (hooks, resume, evaluation) in a
few seconds: 16x16 images, a 2-stage U-Net of width 4, an FCN head.
"""
import copy
import uuid
from typing import Optional, Sequence

from mmengine.config import Config

NUM_CLASSES = 5
SIZE = (16, 16)


def tiny_model(loss_decode=None, **head) -> dict:
    norm_cfg = dict(type='BN', requires_grad=True)
    decode_head = dict(
        type='FCNHead', in_channels=4, in_index=1, channels=4, num_convs=1,
        concat_input=False, dropout_ratio=0.0, num_classes=NUM_CLASSES,
        norm_cfg=norm_cfg, align_corners=False,
        loss_decode=loss_decode or dict(type='CrossEntropyLoss',
                                        loss_weight=1.0))
    decode_head.update(head)
    return dict(
        type='EncoderDecoder',
        data_preprocessor=dict(
            type='SegDataPreProcessor', mean=[128.0] * 3, std=[64.0] * 3,
            bgr_to_rgb=False, pad_val=0, seg_pad_val=255, size=SIZE),
        backbone=dict(
            type='UNet', in_channels=3, base_channels=4, num_stages=2,
            strides=(1, 1), enc_num_convs=(1, 1), dec_num_convs=(1, ),
            downsamples=(True, ), enc_dilations=(1, 1), dec_dilations=(1, ),
            norm_cfg=norm_cfg, upsample_cfg=dict(type='InterpConv')),
        decode_head=decode_head,
        train_cfg=dict(),
        test_cfg=dict(mode='whole'))


def synthetic(length: int, seed: int = 0, test_mode: bool = False,
              pipeline: Optional[Sequence[dict]] = None,
              ignore_rows: int = 2) -> dict:
    return dict(
        type='SyntheticLongTailDataset', num_classes=NUM_CLASSES,
        img_size=SIZE, cell_size=4, ignore_rows=ignore_rows, length=length,
        seed=seed,
        test_mode=test_mode,
        pipeline=list(pipeline or [dict(type='PackSegInputs')]))


def tiny_cfg(work_dir: str, max_iters: int = 4, model: Optional[dict] = None,
             train_dataset: Optional[dict] = None, custom_hooks=(),
             checkpoint_interval: int = 1000, evaluator: Optional[dict] = None,
             val_interval: int = 100000) -> Config:
    val = synthetic(6, seed=1000, test_mode=True)
    cfg = dict(
        default_scope='mmseg',
        runner_type='SafeCheckpointRunner',
        custom_imports=dict(imports=['mmseg_longtail'],
                            allow_failed_imports=False),
        work_dir=str(work_dir),
        model=model or tiny_model(),
        train_dataloader=dict(
            batch_size=2, num_workers=0,
            sampler=dict(type='InfiniteSampler', shuffle=True),
            dataset=train_dataset or synthetic(8)),
        val_dataloader=dict(
            batch_size=2, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False), dataset=val),
        val_evaluator=evaluator or dict(type='IoUMetric',
                                        iou_metrics=['mIoU']),
        test_dataloader=dict(
            batch_size=2, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=copy.deepcopy(val)),
        test_evaluator=evaluator or dict(type='IoUMetric',
                                         iou_metrics=['mIoU']),
        optim_wrapper=dict(type='OptimWrapper',
                           optimizer=dict(type='SGD', lr=0.01,
                                          momentum=0.9)),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters,
                       val_interval=val_interval),
        val_cfg=dict(type='ValLoop'),
        test_cfg=dict(type='TestLoop'),
        default_hooks=dict(
            timer=dict(type='IterTimerHook'),
            logger=dict(type='LoggerHook', interval=1000),
            param_scheduler=dict(type='ParamSchedulerHook'),
            checkpoint=dict(type='CheckpointHook', by_epoch=False,
                            interval=checkpoint_interval),
            sampler_seed=dict(type='DistSamplerSeedHook')),
        custom_hooks=list(custom_hooks),
        env_cfg=dict(cudnn_benchmark=False,
                     dist_cfg=dict(backend='gloo')),
        log_level='WARNING',
        # a name of its own: runners built in the same second would share
        # mmengine's message hub (named after the time) and its scalars
        experiment_name=f'tiny_{uuid.uuid4().hex}',
        randomness=dict(seed=0))
    return Config(cfg)


def build_runner(cfg: Config):
    """The runner ``cfg.runner_type`` names (as tools/train.py builds it)."""
    from mmseg.registry import RUNNERS
    return RUNNERS.build(cfg)
