#!/usr/bin/env bash
# Build the fuzz targets with AddressSanitizer + UndefinedBehaviorSanitizer (g++, or clang++ with
# libFuzzer when FUZZ_ENGINE=libfuzzer) and run each for SECONDS (default 10) on its seed corpus.
#   tests/fuzz/run.sh [SECONDS] [OUT_DIR]      (needs ROUTERM_FUZZ_TOKENIZER_DIR: a folder with tokenizer.json)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
seconds="${1:-10}"
out="${2:-$root/build/fuzz}"
mkdir -p "$out"
cxx="${CXX:-g++}"
flags=(-std=c++17 -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
       -I"$root/src" -I"$root/include")
lib=("$root/src/json.cpp" "$root/src/unicode.cpp" "$root/src/tokenizer.cpp" "$root/src/manifest.cpp"
     "$root/src/util.cpp" "$root/src/sha256.cpp" "$root/src/encode.cpp" "$root/src/cli/jsonl.cpp")
engine=("$here/driver.cpp")
[[ "${FUZZ_ENGINE:-driver}" == libfuzzer ]] && { flags+=(-fsanitize=fuzzer); engine=(); }
declare -A seeds=(
  [json]="$here/seeds/json/*"
  [tokenizer]="$here/seeds/text/*"
  [manifest]="$here/seeds/manifest/*"
  [jsonl]="$here/seeds/jsonl/*"
)
for target in json tokenizer manifest jsonl; do
  bin="$out/fuzz_$target"
  newer=""
  [[ -x "$bin" ]] && newer="$(find "$root/src" "$root/include" "$here" \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' -o -name '*.inc' \) -newer "$bin" | head -1)"
  if [[ ! -x "$bin" || -n "$newer" ]]; then
    "$cxx" "${flags[@]}" "$here/fuzz_$target.cpp" "${engine[@]}" "${lib[@]}" -o "$bin"
  fi
  # shellcheck disable=SC2086
  if [[ "${FUZZ_ENGINE:-driver}" == libfuzzer ]]; then args=(-max_total_time="$seconds" "$(dirname ${seeds[$target]})"); else args=("$seconds" ${seeds[$target]}); fi
  (cd "$out" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
     "$bin" "${args[@]}")
  echo "fuzz_$target: ok"
done
