#!/usr/bin/env bash
# Device check for GPU clusters, on a machine with one CUDA GPU, under 8 minutes:
#   1. whisper-kws at 0.1 / 0.25 / 0.5 GPU per client in fp32 and bf16 through simfl's engine,
#      vs the plain single-process GPU loop doing the same rounds (bench/gpu_whisper_kws.py);
#   2. the real-GPU tests: each client's model sits on the GPU Ray assigned to its actor, and
#      a GPU run measures one client's peak memory and reports the packing.
# Figures go to $OUT (default results/gpu-check/). Usage: bench/gpu_check.sh [python]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-${PYTHON:-.venv/bin/python}}
OUT=${OUT:-results/gpu-check}
mkdir -p "$OUT"
export FLWR_TELEMETRY_ENABLED=0 WANDB_MODE=disabled PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
start=$(date +%s)
"$PY" - <<'PY' | tee "$OUT/device.txt"
import torch
assert torch.cuda.is_available(), f"no CUDA device visible to torch {torch.__version__}"
p = torch.cuda.get_device_properties(0)
print(f"torch {torch.__version__}, {p.name}, {p.total_memory / 2**30:.1f} GiB, "
      f"bf16 supported: {torch.cuda.is_bf16_supported()}")
PY
# rows are printed (and the JSON rewritten) as each run ends, so a timeout keeps what ran
timeout 330 "$PY" bench/gpu_whisper_kws.py --fractions 0.1 0.25 0.5 --precisions fp32 bf16 \
  --rounds 3 --json "$OUT/gpu_whisper_kws.json" 2>&1 | tee "$OUT/gpu_whisper_kws.txt" \
  || echo "gpu-whisper: FAILED or timed out after 330 s (see $OUT/gpu_whisper_kws.txt)"
timeout 120 "$PY" -m pytest -q -p no:cacheprovider tests/test_gpu_real.py 2>&1 \
  | tee "$OUT/pytest-gpu.txt" || echo "gpu tests: FAILED or timed out (see $OUT/pytest-gpu.txt)"
echo "device check done in $(( $(date +%s) - start )) s; figures in $OUT"
