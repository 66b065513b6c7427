#!/usr/bin/env bash
# After `make reproduce`: export every bundle from checkpoints/ (results/export.json), check the
# served accuracy against results/accuracy.json (results/engine_accuracy.json), run the latency
# benchmark (results/latency.*) and re-render the tables of README.md and docs/ (lab.render_docs).
#   STAGES="fp32 merged served int8 fp16 latency render" (default: all, in that order)
# An export that fails its validation is reported and the pipeline goes on (the bundle is not kept).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export ORT_DISABLE_TELEMETRY=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
STAGES=${STAGES:-"fp32 merged served int8 fp16 latency render"}
VAL=${VAL_PAIRS:-60}            # validation pairs per domain for the fp32 parity runs
ACC_VAL=${ACC_VAL_PAIRS:-100000} # int8/fp16 agreement guard (98% of decisions): the whole validation split
LATENCY_ARGS=${LATENCY_ARGS:-"--full --out results --requests 96 --repeats 5 --warmup 1"}
failed=()
run() { echo "+ $*"; "$@" || failed+=("$*"); }
for stage in $STAGES; do
  case $stage in
    fp32)   for m in baseline more rodos arliss; do run $PY -m lab.export_results --method "$m" --val-pairs "$VAL"; done ;;
    served) served=(); for b in baseline more rodos arliss arliss-merged; do [ -d "bundles/$b" ] && served+=("bundles/$b"); done
            run $PY -m lab.engine_accuracy "${served[@]}" ;;
    int8)   for p in int8 int8-blockwise; do for m in baseline more rodos arliss; do   # every int8 scheme, export/optimize.py
              run $PY -m lab.export_results --method "$m" --precision "$p" --val-pairs "$ACC_VAL"; done; done ;;
    merged) run $PY -m lab.export_results --method arliss --lora merged --val-pairs "$VAL" ;;
    fp16)   run $PY -m lab.export_results --method arliss --precision fp16 --val-pairs "$ACC_VAL" ;;
    latency) run $PY benchmarks/latency.py $LATENCY_ARGS ;;
    render) run $PY -m lab.render_docs ;;
    *) echo "unknown stage '$stage'"; exit 2 ;;
  esac
done
if [ ${#failed[@]} -gt 0 ]; then printf 'FAILED: %s\n' "${failed[@]}"; exit 1; fi
