#!/usr/bin/env bash
# The training benchmark + the whole demo recipe in one job. Needs: one CUDA GPU with torch
# (CUDA build), the data folder packed by training/demo/pack_data.py, and /tmp (or $WORK) space
# for the run. Results are packed so that no file is over 16 MiB (the model directory is tarred
# and split), for transfers that limit file sizes.
#
#   training/demo/gpu_run.sh DATA_DIR RESULTS_DIR      (DATA_DIR from training/demo/pack_data.py)
#
# Reassemble the model:  cat RESULTS_DIR/model.tar.part-* | tar -x -C SOMEWHERE
set -uo pipefail
DATA=${1:?usage: gpu_run.sh DATA_DIR RESULTS_DIR}
RES=${2:?usage: gpu_run.sh DATA_DIR RESULTS_DIR}
HERE=$(cd "$(dirname "$0")/../.." && pwd)
export PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
WORK=${WORK:-/tmp/cxr-demo}
mkdir -p "$RES" "$WORK"
{ nvidia-smi -L; python3 -c "import sys, torch; print(sys.version.split()[0], torch.__version__, torch.cuda.is_available())"; } 2>&1 | tee "$RES/env.txt"
python3 - > "$RES/bench.json" <<'EOF'
import argparse, json
from cxrviewer.bench import train as b
out = []
for bs in ("64", "256"):
    p = argparse.ArgumentParser(); b.add_arguments(p)
    out.append(b.run(p.parse_args(["--device", "cuda", "--batch-size", bs])))
print(json.dumps(out, indent=1))
EOF
cat "$RES/bench.json"
"$HERE/training/demo/recipe.sh" "$DATA" "$WORK/run" 2>&1 | tee "$RES/recipe.log"
rc=${PIPESTATUS[0]}
if [ "$rc" != 0 ] && grep -qi "worker\|shm\|shared memory" "$RES/recipe.log"; then
  echo "retrying without DataLoader workers" | tee -a "$RES/recipe.log"
  EXTRA="${EXTRA:-} --workers 0" "$HERE/training/demo/recipe.sh" "$DATA" "$WORK/run0" 2>&1 | tee -a "$RES/recipe.log"
  rc=${PIPESTATUS[0]}; WORK_RUN="$WORK/run0"
else
  WORK_RUN="$WORK/run"
fi
cp "$WORK_RUN/summary.txt" "$RES/" 2>/dev/null
if [ -d "$WORK_RUN/model" ]; then
  tar -C "$WORK_RUN" -cf - model | split -b 15m - "$RES/model.tar.part-"
fi
exit "$rc"
