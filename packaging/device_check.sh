#!/usr/bin/env bash
# One-shot check of the FULL (torch + CUDA) bundle on a machine with an NVIDIA GPU.
# Needs: a CUDA GPU with driver, Python with torch + torchvision (CUDA build), no network, and
# in build/devwhl/ the wheels that such an image usually lacks (pyinstaller, hooks-contrib,
# altgraph, pydicom, platformdirs, pylibjpeg*); the sample comes from resources/sample/. An image
# without PySide6 builds a bundle without Qt, so the selftest runs with --no-gui. Writes its log,
# the size report and the exports to $OUT (default /tmp/out). Fetch the wheels first, elsewhere:
#   P="--platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux_2_31_x86_64 --platform manylinux_2_34_x86_64"
#   for w in pyinstaller==6.22.3 pyinstaller-hooks-contrib==2026.9 altgraph pydicom==3.0.2 platformdirs \
#            pylibjpeg==2.1.0 pylibjpeg-libjpeg pylibjpeg-openjpeg==2.6.0; do
#     python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp $P -d build/devwhl $w; done
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
exec > >(tee "$OUT/device_check.log") 2>&1
t0=$(date +%s)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site build/devwhl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -c "import torch, torchvision; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available(), 'torchvision', torchvision.__version__)"
python3 - <<'PY' || exit 1
import torch
from cxrviewer.ml.model import build_model, head_linear
from cxrviewer.ml.registry import save_model_dir
torch.manual_seed(0)
m = build_model()
with torch.no_grad():
    head_linear(m).weight.mul_(0.05)
save_model_dir(m.eval(), "/tmp/m/selftest-random", {"name": "selftest-random", "version": "0.0.1", "threshold": 0.5})
PY
echo "setup $(( $(date +%s) - t0 )) s"
timeout 420 python3 packaging/build.py --no-sample --model /tmp/m/selftest-random --dist /tmp/d --work /tmp/w
rc=$?; echo "build rc=$rc after $(( $(date +%s) - t0 )) s"
cp /tmp/d/cxrviewer-size.json "$OUT/" 2>/dev/null
tail -n 60 /tmp/w/pyinstaller.log > "$OUT/pyinstaller_tail.log" 2>/dev/null
[ $rc -eq 0 ] || exit $rc
ls /tmp/d/cxrviewer/_internal/torchvision/ | grep -E '\.so$'
export -n PYTHONPATH
for backend in torch auto; do
  env -u PYTHONPATH CXRVIEWER_DATA_DIR=/tmp/u/d CXRVIEWER_CACHE_DIR=/tmp/u/c CXRVIEWER_LOG_DIR=/tmp/u/l \
    timeout 120 /tmp/d/cxrviewer/cxrviewer selftest --no-gui --backend $backend \
    --sample "$PWD/resources/sample/RG1_J2KR.dcm" --out "$OUT/export_$backend.png"
  echo "selftest backend=$backend rc=$?"
done
echo "total $(( $(date +%s) - t0 )) s"
