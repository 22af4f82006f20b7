#!/usr/bin/env bash
# One-command setup of the OpenMMLab stack + mmseg-longtail (editable, with test extras).
#
# - keeps an existing torch; otherwise installs torch 2.14.1 with its paired torchvision
#   0.29.1 (PyPI's default build: it runs on CPU and GPU, and unlike the CPU-only torch
#   wheels it has a torchvision whose compiled ops load; set TORCH_SPEC / TORCHVISION_SPEC
#   to choose, e.g. TORCH_SPEC='torch==2.1.2' on a CUDA cluster);
# - builds full mmcv 2.1.x (compiled ops) from source when no binary wheel fits, against
#   the installed torch (no build isolation), with ninja on all cores; pip's wheel cache
#   keeps the built wheel, so a second install takes seconds;
# - installs mmengine, mmsegmentation, mmpretrain, mmseg's import-time extras and this
#   package in editable mode with its test extras.
# Idempotent: run it again any time.
set -euo pipefail

PY=${PYTHON:-python3}
MMCV_SPEC=${MMCV_SPEC:-mmcv==2.1.0}
TORCH_SPEC=${TORCH_SPEC:-torch==2.14.1}
TORCHVISION_SPEC=${TORCHVISION_SPEC:-}
cd "$(dirname "$0")/.."
T0=$(date +%s)
step() { echo "[install $(( $(date +%s) - T0 ))s] $*"; }
pip_() { "$PY" -m pip install --disable-pip-version-check "$@"; }

step "python: $("$PY" --version 2>&1) at $(command -v "$PY")"

step "build tools (wheel, ninja)"
pip_ -q wheel ninja packaging

if "$PY" -c 'import torch' 2>/dev/null; then
  step "torch $("$PY" -c 'import torch; print(torch.__version__)') already installed: kept"
else
  # with its torchvision in one resolve, so that the pair matches
  TV_DEFAULT=torchvision==0.29.1
  [ "$TORCH_SPEC" = torch==2.14.1 ] || TV_DEFAULT=
  step "installing $TORCH_SPEC ${TORCHVISION_SPEC:-$TV_DEFAULT}"
  pip_ -q "$TORCH_SPEC" ${TORCHVISION_SPEC:-$TV_DEFAULT}
fi

# mmcv's setup.py and mmengine's package lookup (`mmseg::` config scopes) import
# pkg_resources, which setuptools >= 70 no longer ships. torch >= 2.13 declares
# setuptools>=77 only for its own extension builder; pip warns about that, harmlessly.
step "setuptools<70 (pkg_resources for mmcv's build and mmengine's config scopes)"
pip_ -q 'setuptools<70'

have_mmcv_ops() {
  "$PY" - <<'PY' 2>/dev/null
import mmcv, mmcv.ops  # noqa: F401  (full mmcv: the compiled ops import)
from mmcv.ops import nms  # noqa: F401
PY
}
if have_mmcv_ops; then
  step "full mmcv $("$PY" -c 'import mmcv; print(mmcv.__version__)') with ops already installed: kept"
else
  # Pin the deps mmcv's build reads first; then build (or take from pip's wheel cache).
  pip_ -q addict 'mmengine>=0.10.0,<0.11' 'numpy' pyyaml yapf opencv-python-headless
  export MMCV_WITH_OPS=1
  export MAX_JOBS=${MAX_JOBS:-$(nproc)}
  # ninja must be on PATH for torch's extension builder to use it.
  export PATH="$("$PY" -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
  ATEN_H=$("$PY" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "include", "ATen", "ATen.h"))')
  if grep -q 'C++20' "$ATEN_H" 2>/dev/null; then
    # torch >= 2.14's headers need C++20, and mmcv 2.1.0's setup.py asks for
    # -std=c++17 (a later flag wins): build the sdist with that one flag
    # changed, and keep the wheel per torch version (pip does not cache
    # wheels built from a local folder).
    TV=$("$PY" -c 'import torch; print(torch.__version__.replace("+", "_"))')
    WHEELS=${MMCV_WHEEL_DIR:-$HOME/.cache/mmseg_longtail/wheels/torch-$TV}
    if ! ls "$WHEELS"/mmcv-*.whl >/dev/null 2>&1; then
      SRC=$(mktemp -d)
      step "building $MMCV_SPEC from source for C++20 (first time: ~15 min on 2 cores; MAX_JOBS=$MAX_JOBS) -> $WHEELS"
      "$PY" -m pip download --disable-pip-version-check -q --no-deps --no-binary :all: "$MMCV_SPEC" -d "$SRC"
      tar xzf "$SRC"/mmcv-*.tar.gz -C "$SRC"
      sed -i "s/'-std=c++17'/'-std=c++20'/g" "$SRC"/mmcv-*/setup.py
      mkdir -p "$WHEELS"
      "$PY" -m pip wheel --disable-pip-version-check -q --no-deps --no-build-isolation "$SRC"/mmcv-*/ -w "$WHEELS"
      rm -rf "$SRC"
    fi
    step "installing mmcv from $WHEELS"
    pip_ -q --no-deps --force-reinstall "$WHEELS"/mmcv-*.whl
  else
    step "building $MMCV_SPEC from source if not cached (first time: ~15 min on 2 cores; MAX_JOBS=$MAX_JOBS)"
    pip_ --no-build-isolation "$MMCV_SPEC"
  fi
fi

step "mmengine, mmsegmentation, mmpretrain and mmseg's import-time extras"
pip_ -q 'mmengine==0.10.7' 'mmsegmentation==1.2.2' 'mmpretrain>=1.2,<1.3' ftfy regex \
  'matplotlib' 'prettytable' 'scipy' 'h5py' 'setuptools<70'

# mmpretrain's backbones (type='mmpretrain.ResNet' in mmseg configs) import
# torchvision. Take the release paired with an existing torch (0.(minor+15)) when
# its compiled ops load against it; otherwise leave it out (PyPI's torchvision
# does not load beside the CPU-only torch wheels) and say so: only mmpretrain
# backbones need it.
have_torchvision() { "$PY" -c 'import torch, torchvision.ops; torchvision.ops.nms(torch.zeros(1, 4), torch.zeros(1), 0.5)' 2>/dev/null; }
if have_torchvision; then
  step "torchvision $("$PY" -c 'import torchvision; print(torchvision.__version__)') already installed: kept"
else
  TV_SPEC=${TORCHVISION_SPEC:-$("$PY" -c 'import torch; M, m = torch.__version__.split("+")[0].split(".")[:2]; print(f"torchvision=={int(M) - 2}.{int(m) + 15}.*" if M == "2" else "")')}
  if [ -n "$TV_SPEC" ]; then
    step "trying $TV_SPEC (for mmpretrain backbones)"
    pip_ -q --no-deps "$TV_SPEC" || true
    if ! have_torchvision; then
      "$PY" -m pip uninstall -y -q torchvision 2>/dev/null || true
      step "NOTE: no torchvision build on the index matches this torch; mmpretrain backbones are unavailable (the rest is unaffected)"
    fi
  fi
fi

step "mmseg-longtail (editable, test extras)"
pip_ -q --no-build-isolation -e '.[tests]' 'setuptools<70'

"$PY" - <<'PY'
import torch, mmcv, mmengine, mmseg, mmpretrain, mmcv.ops  # noqa: F401
import mmseg_longtail
print(f'torch {torch.__version__} | mmcv {mmcv.__version__} | mmengine {mmengine.__version__} '
      f'| mmseg {mmseg.__version__} | mmpretrain {mmpretrain.__version__} '
      f'| mmseg_longtail {mmseg_longtail.__version__} | cuda {torch.cuda.is_available()}')
PY
step "done"
