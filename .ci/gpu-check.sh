#!/usr/bin/env bash
# The GPU check of issue 7, for a session that is lent a one-GPU machine. Never run by CI.
#   here:    bash .ci/gpu-wheels.sh        (packages the device image lacks, into .whl/)
#   device:  run(command="bash .ci/gpu-check.sh", carry=[".whl"], timeout_s=420)   -> files in $OUT
# It runs a single-GPU training step over NCCL (predicted vs measured step time and peak memory) and
# GEMM / attention / copy microbenchmarks fitted into an overlay of the H100 or H200 profile; the
# training step stays out of the fit (held out), so its error after calibration is an honest one.
# GPU_CHECK_DRY=1 runs the same commands here on CPU (gloo, tiny model, cpu-host) to test the script.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if [ "${GPU_CHECK_DRY:-0}" = 1 ]; then
  BACKEND=gloo PROFILE=cpu-host
  MODEL=(--layers 2 --hidden 64 --heads 4 --vocab 256 --seq 64 --global-batch 4 --micro-batch 1 --dtype fp32)
  echo "dry run on CPU" | tee "$OUT/gpu.txt"
else
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
  GPU=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1)
  case "$GPU" in
    *H200*) PROFILE=h200-sxm-141gb ;;
    *) PROFILE=h100-sxm-80gb ;;
  esac
  BACKEND=nccl
  # ~0.5B-parameter slice: 8 layers of hidden 2048, bf16 autocast, SDPA (flash) attention
  MODEL=(--layers 8 --hidden 2048 --heads 16 --vocab 32000 --seq 2048 --global-batch 8 --micro-batch 1 --dtype bf16)
  echo "gpu: $GPU -> profile $PROFILE" | tee "$OUT/gpu.txt"
fi
paraplan() { python3 -c 'import sys; from planner.cli import main; main(sys.argv[1:])' "$@"; }
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$OUT/gpu.txt"
date -u +%FT%TZ | tee -a "$OUT/gpu.txt"
SECONDS=0
paraplan validate run --backend "$BACKEND" --nproc 1 --layout tp=1 "${MODEL[@]}" --steps 6 --warmup 3 \
    --timeout 300 --out "$OUT/results.json" | tee "$OUT/validate_run.txt"
echo "validate run: ${SECONDS}s" | tee -a "$OUT/gpu.txt"
paraplan validate report --results "$OUT/results.json" --hardware "$PROFILE" --json > "$OUT/report_base.json"
paraplan validate report --results "$OUT/results.json" --hardware "$PROFILE" | tee "$OUT/report_base.txt"
paraplan calibrate --hardware "$PROFILE" --backend "$BACKEND" --nproc 1 --results "$OUT/results.json" --held-out tp=1 \
    --out "$OUT/overlay.yaml" | tee "$OUT/calibrate.txt"
echo "calibrate: ${SECONDS}s" | tee -a "$OUT/gpu.txt"
paraplan validate report --results "$OUT/results.json" --hardware "$PROFILE" --calibration "$OUT/overlay.yaml" \
    --json > "$OUT/report_calibrated.json"
paraplan validate report --results "$OUT/results.json" --hardware "$PROFILE" --calibration "$OUT/overlay.yaml" \
    | tee "$OUT/report_calibrated.txt"
echo "total: ${SECONDS}s" | tee -a "$OUT/gpu.txt"
