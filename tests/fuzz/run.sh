#!/usr/bin/env bash
# Build the fuzz targets with AddressSanitizer + UndefinedBehaviorSanitizer and run each for SECONDS
# (default 10) from its seed corpus.
#   tests/fuzz/run.sh [SECONDS] [OUT_DIR] [TARGET...]   (default: json tokenizer manifest jsonl bpe unigram chat)
# FUZZ_ENGINE=driver (default): g++ with tests/fuzz/driver.cpp, random mutations (not coverage-guided).
# FUZZ_ENGINE=libfuzzer: clang++ -fsanitize=fuzzer, coverage-guided; clang and libFuzzer are
#   installed with apt-get when missing (tests/fuzz/libfuzzer.sh). The corpus grows in
#   OUT_DIR/libfuzzer/<target>/corpus (the seeds are read, never written); a finding is written
#   beside it (crash-*, leak-*, timeout-*, oom-*).
# SECONDS=0 builds without running; FUZZ_NO_BUILD=1 runs what was built (parallel runs of one build).
# Environment the targets read:
#   ROUTERM_FUZZ_TOKENIZER_DIR  the tokenizer target's real tokenizer (a folder with tokenizer.json)
#   ROUTERM_FUZZ_TOKENIZERS     the bpe/unigram/chat targets' tokenizers; default OUT_DIR/tokenizers,
#                               made there by tests/fuzz/make_tokenizers.py with $PYTHON (default:
#                               the repository's .venv/bin/python, else python3)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
seconds="${1:-10}"
out="${2:-$root/build/fuzz}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"   # the targets run in folders of their own
shift $(( $# < 2 ? $# : 2 ))
engine="${FUZZ_ENGINE:-driver}"
declare -A seeds=([json]=json [tokenizer]=text [manifest]=manifest [jsonl]=jsonl [bpe]=bpe [unigram]=unigram
                  [chat]=chat)
declare -A dicts=([bpe]=tokenizer_json [unigram]=tokenizer_json [chat]=chat)   # libFuzzer's -dict
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(json tokenizer manifest jsonl bpe unigram chat)
for target in "${targets[@]}"; do
  [[ -n "${seeds[$target]:-}" ]] || { echo "unknown fuzz target '$target'" >&2; exit 2; }
done
# Every library source a target may need: all of src/ but the ONNX Runtime parts.
lib=(json unicode tokenizer added_tokens bpe unigram wordpiece normalizer pretokenizer split_regex encode chat
     formats manifest onnx_refs util sha256 cli/jsonl)
build="$out/$engine"
export ROUTERM_FUZZ_TOKENIZERS="$(realpath -m "${ROUTERM_FUZZ_TOKENIZERS:-$out/tokenizers}")"
if [[ -n "${ROUTERM_FUZZ_TOKENIZER_DIR:-}" ]]; then
  export ROUTERM_FUZZ_TOKENIZER_DIR="$(realpath "$ROUTERM_FUZZ_TOKENIZER_DIR")"
fi

# --- build: objects of the library once per engine, then each target ------------------------------
# Compile $1 to $2 unless $2 is newer than $1 and than every header under the folders $3...
compile() {
  local src="$1" obj="$2"
  shift 2
  if [[ ! -f "$obj" || "$src" -nt "$obj" || -n "$(find "$@" \( -name '*.hpp' -o -name '*.h' -o -name '*.inc' \) \
        -newer "$obj" | head -1)" ]]; then
    "$cxx" "${flags[@]}" -c "$src" -o "$obj"
  fi
}
if [[ -z "${FUZZ_NO_BUILD:-}" ]]; then
  if [[ "$engine" == libfuzzer ]]; then
    cxx="$(bash "$here/libfuzzer.sh")"
    sanitize=-fsanitize=fuzzer-no-link,address,undefined
    link=(-fsanitize=fuzzer,address,undefined)
  else
    cxx="${CXX:-g++}"
    sanitize=-fsanitize=address,undefined
    link=(-fsanitize=address,undefined)
  fi
  flags=(-std=c++17 -O1 -g "$sanitize" -fno-sanitize-recover=all -fno-omit-frame-pointer -I"$root/src"
         -I"$root/include")
  mkdir -p "$build/obj"
  objs=()
  for src in "${lib[@]}"; do
    compile "$root/src/$src.cpp" "$build/obj/${src//\//_}.o" "$root/src" "$root/include"
    objs+=("$build/obj/${src//\//_}.o")
  done
  [[ "$engine" == libfuzzer ]] || { compile "$here/driver.cpp" "$build/obj/driver.o"; objs+=("$build/obj/driver.o"); }
  for target in "${targets[@]}"; do
    compile "$here/fuzz_$target.cpp" "$build/obj/fuzz_$target.o" "$root/src" "$root/include" "$here"
    if [[ ! -x "$build/fuzz_$target" || -n "$(find "$build/obj/fuzz_$target.o" "${objs[@]}" \
          -newer "$build/fuzz_$target" | head -1)" ]]; then
      "$cxx" "${link[@]}" "$build/obj/fuzz_$target.o" "${objs[@]}" -o "$build/fuzz_$target"
    fi
  done
  if [[ " ${targets[*]} " =~ \ (bpe|unigram|chat)\  ]]; then
    python="${PYTHON:-$root/.venv/bin/python}"
    [[ -x "$python" ]] || python=python3
    PYTHONPATH="$root/tests${PYTHONPATH:+:$PYTHONPATH}" "$python" "$here/make_tokenizers.py" "$ROUTERM_FUZZ_TOKENIZERS" >/dev/null
  fi
fi
[[ "$seconds" == 0 ]] && exit 0

# --- run ------------------------------------------------------------------------------------------
for target in "${targets[@]}"; do
  work="$build/$target"
  mkdir -p "$work"
  seed_dir="$here/seeds/${seeds[$target]}"
  if [[ "$engine" == libfuzzer ]]; then
    mkdir -p "$work/corpus"
    dict=()
    [[ -n "${dicts[$target]:-}" ]] && dict=(-dict="$here/dicts/${dicts[$target]}.dict")
    args=(-max_total_time="$seconds" -timeout=30 -print_final_stats=1 -artifact_prefix="$work/" "${dict[@]}"
          "$work/corpus" "$seed_dir")
  else
    args=("$seconds" "$seed_dir")
  fi
  (cd "$work" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
     "$build/fuzz_$target" "${args[@]}")
  echo "fuzz_$target: ok"
done
