"""The Python steps of ``tools/misc/gpu_check.sh``: why a machine has no
usable GPU, the versions of the stack, and the short training's config.

    python -m mmseg_longtail.analysis.gpu_check reason     # exit 1 + why
    python -m mmseg_longtail.analysis.gpu_check versions
    python -m mmseg_longtail.analysis.gpu_check config OUT.py
"""
import os
import os.path as osp
import shutil
import subprocess
import sys
from typing import Optional, Sequence

TRAIN_ITERS = 50
# the UNet base on the synthetic long-tailed data, 50 iterations, one
# validation at the end; nothing but the plugin's own configs
TRAIN_CONFIG = """_base_ = {bases!r}
custom_imports = dict(imports=['mmseg_longtail'], allow_failed_imports=False)
train_dataloader = dict(batch_size=4, num_workers=2, dataset=dict(length=64))
val_dataloader = dict(batch_size=4, dataset=dict(length=8))
test_dataloader = val_dataloader
model = dict(data_preprocessor=dict(size=(64, 64)),
             decode_head=dict(num_classes=5),
             auxiliary_head=dict(num_classes=5))
train_cfg = dict(max_iters={iters}, val_interval={iters})
param_scheduler = [dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0,
                        end={iters}, by_epoch=False)]
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(interval={iters}))
randomness = dict(seed=0)
"""


def no_gpu_reason() -> Optional[str]:
    """None where torch sees a CUDA device, else one line saying why not."""
    try:
        import torch
    except Exception as error:  # noqa: BLE001
        return (f'torch does not import ({type(error).__name__}: {error}); '
                'run bash tools/install.sh first')
    if torch.cuda.is_available():
        return None
    smi = 'no nvidia-smi on PATH'
    if shutil.which('nvidia-smi'):
        try:
            gpus = subprocess.run(['nvidia-smi', '-L'], capture_output=True,
                                  text=True, timeout=30).stdout.strip()
            smi = (f'nvidia-smi lists {len(gpus.splitlines())} GPU(s)'
                   if gpus else 'nvidia-smi lists no GPU')
        except (OSError, subprocess.TimeoutExpired):
            smi = 'nvidia-smi fails'
    build = (f'built with CUDA {torch.version.cuda}' if torch.version.cuda
             else 'a CPU-only build: install a CUDA build of torch')
    hidden = ('; CUDA_VISIBLE_DEVICES is empty'
              if os.environ.get('CUDA_VISIBLE_DEVICES') == '' else '')
    return (f'torch.cuda.is_available() is False (torch {torch.__version__}, '
            f'{build}; {smi}{hidden}); run it on a GPU node')


def versions_text() -> str:
    """The GPU and the versions of torch, CUDA, cuDNN, NCCL and the stack."""
    import mmcv
    import mmengine
    import mmseg
    import torch

    import mmseg_longtail
    props = torch.cuda.get_device_properties(0)
    try:
        from mmcv.ops import get_compiling_cuda_version
        ops = get_compiling_cuda_version()
        ops = ('ops compiled with CUDA ' + ops if ops != 'not available'
               else 'ops compiled for CPU only (enough: the plugin needs no '
               'mmcv op)')
    except Exception as error:  # noqa: BLE001
        ops = f'no compiled ops ({type(error).__name__})'
    return '\n'.join([
        f'  torch: {torch.cuda.device_count()} GPU(s); device 0 '
        f'{torch.cuda.get_device_name(0)}, '
        f'{props.total_memory / 2**30:.1f} GiB, compute capability '
        f'{props.major}.{props.minor}',
        f'  torch {torch.__version__} | CUDA {torch.version.cuda} | cuDNN '
        f'{torch.backends.cudnn.version()} | NCCL '
        f"{'.'.join(map(str, torch.cuda.nccl.version()))}",
        f'  mmcv {mmcv.__version__} ({ops}) | mmengine '
        f'{mmengine.__version__} | mmseg {mmseg.__version__} | '
        f'mmseg_longtail {mmseg_longtail.__version__}'])


def write_train_config(path: str) -> str:
    """The short training's config (absolute base paths) at ``path``."""
    from .benchmark_losses import loss_base_dir
    base_root = osp.dirname(loss_base_dir())  # configs/_base_
    bases = [osp.join(base_root, *p) for p in (
        ('models', 'unet.py'), ('datasets', 'synthetic.py'),
        ('default_runtime.py', ), ('schedules', 'schedule_30k.py'))]
    with open(path, 'w') as f:
        f.write(TRAIN_CONFIG.format(bases=bases, iters=TRAIN_ITERS))
    return path


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv == ['reason']:
        why = no_gpu_reason()
        if why:
            print(why)
        return 1 if why else 0
    if argv == ['versions']:
        print(versions_text())
        return 0
    if len(argv) == 2 and argv[0] == 'config':
        write_train_config(argv[1])
        return 0
    print('usage: python -m mmseg_longtail.analysis.gpu_check '
          '{reason | versions | config OUT.py}', file=sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main())
