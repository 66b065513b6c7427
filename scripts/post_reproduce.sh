#!/usr/bin/env bash
# After `make reproduce`: export every bundle from checkpoints/ (writes results/export.json),
# check the served accuracy against results/accuracy.json (results/engine_accuracy.json), run the
# latency benchmark (results/latency.*) and re-render the README's tables.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export ORT_DISABLE_TELEMETRY=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
VAL=${VAL_PAIRS:-60}   # validation pairs per domain for the export accuracy checks
for m in baseline more rodos arliss; do
  $PY export/to_onnx.py --method "$m" --val-pairs "$VAL"
done
$PY scripts/engine_accuracy.py bundles/baseline bundles/more bundles/rodos bundles/arliss
for m in baseline more rodos arliss; do
  $PY export/to_onnx.py --method "$m" --precision int8 --val-pairs "$VAL"
done
$PY export/to_onnx.py --method arliss --lora merged --val-pairs "$VAL"
$PY export/to_onnx.py --method arliss --precision fp16 --val-pairs "$VAL"
$PY benchmarks/latency.py ${LATENCY_ARGS:-}
$PY scripts/render_readme.py
