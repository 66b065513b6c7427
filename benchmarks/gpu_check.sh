#!/usr/bin/env bash
# GPU check for kernels/: the GPU-only tests, the benchmark, then the CPU test grid on the GPU.
#
# Prepared without a GPU: the session that wrote kernels/ had no device lent, so this script has
# NOT been run yet. Run it on a CUDA machine from the repository root:
#
#     OUT=/some/dir PYTHON=/path/to/python benchmarks/gpu_check.sh
#
# PYTHON must have a CUDA build of torch and triton==3.9.0 (the repo's .venv is CPU-only torch).
# Everything it produces lands under $OUT (the GPU runner sets it; defaults to ./gpu_check_out):
#   env.txt                      torch / CUDA / triton / GPU versions
#   pytest_gpu.log, .xml         pytest -m gpu tests/test_kernels.py (bf16, T=4096, D=1024)
#   bench.log, kernels_*.json    benchmarks/kernel_speed.py (also written to results/kernels_<gpu>.json)
#   pytest_grid.log, .xml        the rest of tests/test_kernels.py, on CUDA tensors this time
#   pytest_device.log, .xml      tests/test_device.py: a tiny training run with --device cuda
#   summary.txt                  exit status of each step
# Expected wall time on one H100/H200: about 3 to 5 minutes, mostly Triton compiles and do_bench;
# the step time limits (150 + 300 + 140 + 60 s) keep it under a 10-minute runner call.
# Every step runs even if an earlier one fails; the script exits non-zero if any step failed.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu_check_out}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT"
unset TRITON_INTERPRET
export PYTHONDONTWRITEBYTECODE=1
status=0

step() {  # step NAME TIMEOUT_S COMMAND...: run, tee to $OUT/NAME.log, record the exit status
    local name=$1 limit=$2
    shift 2
    timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
    local rc=${PIPESTATUS[0]}
    echo "$name: rc=$rc" | tee -a "$OUT/summary.txt"
    [ "$rc" -eq 0 ] || status=1
}

: > "$OUT/summary.txt"
"$PY" - > "$OUT/env.txt" 2>&1 <<'PYEOF'
import platform, torch, triton
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda,
      "triton", triton.__version__)
print("cuda available:", torch.cuda.is_available())
if torch.cuda.is_available():
    print("gpu:", torch.cuda.get_device_name(0), torch.cuda.get_device_capability(0))
PYEOF
cat "$OUT/env.txt"
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: $PY has no CUDA (see $OUT/env.txt); nothing to check." | tee -a "$OUT/summary.txt"
    exit 1
fi

step pytest_gpu 150 "$PY" -m pytest -q -m gpu tests/test_kernels.py --junitxml="$OUT/pytest_gpu.xml"
step bench 300 "$PY" -m benchmarks.kernel_speed --dtypes float16 bfloat16
cp results/kernels_*.json "$OUT/" 2>/dev/null || echo "bench: no results file" >> "$OUT/summary.txt"
step pytest_grid 140 "$PY" -m pytest -q -m "not gpu" tests/test_kernels.py --junitxml="$OUT/pytest_grid.xml"
step pytest_device 60 "$PY" -m pytest -q tests/test_device.py --junitxml="$OUT/pytest_device.xml"

cat "$OUT/summary.txt"
exit "$status"
