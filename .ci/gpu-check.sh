#!/usr/bin/env bash
# The GPU check of issue 7, prepared for a session that is lent a one-GPU machine (the `device`
# tool runs it from the repository root; results land in $OUT). Never run by CI.
#   - a single-GPU training step over NCCL, predicted vs measured step time and peak memory;
#   - GEMM / attention / copy microbenchmarks fitted into an overlay for the H100 or H200 profile.
set -euo pipefail
OUT=${OUT:-out}
mkdir -p "$OUT"
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
case "$GPU" in
  *H200*) PROFILE=h200-sxm-141gb ;;
  *H100*) PROFILE=h100-sxm-80gb ;;
  *) PROFILE=h100-sxm-80gb ;;
esac
echo "gpu: $GPU -> profile $PROFILE" | tee "$OUT/gpu.txt"
python3 -m venv .venv-gpu && . .venv-gpu/bin/activate
pip install -q -e '.[validate]'
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$OUT/gpu.txt"
# one step of a ~1B-parameter slice on one GPU, bf16, flash attention via SDPA
paraplan validate run --backend nccl --nproc 1 --layout tp=1 --layers 8 --hidden 2048 --heads 16 --vocab 32000 \
    --seq 2048 --global-batch 8 --micro-batch 1 --dtype bf16 --steps 6 --warmup 3 --timeout 300 \
    --out "$OUT/results.json" --json > "$OUT/validate_run.json"
paraplan validate report --results "$OUT/results.json" --hardware "$PROFILE" --json > "$OUT/report_base.json"
paraplan calibrate --hardware "$PROFILE" --backend nccl --nproc 1 --microbench-only --out "$OUT/overlay.yaml" \
    --json > "$OUT/calibrate.json"
paraplan validate report --results "$OUT/results.json" --hardware "$PROFILE" --calibration "$OUT/overlay.yaml" \
    --json > "$OUT/report_calibrated.json"
