#!/usr/bin/env bash
# Make sure `clang++ -fsanitize=fuzzer,address,undefined` links a program, installing clang and the
# compiler-rt package that holds libFuzzer with apt-get when it does not (Debian: `clang` is the
# distribution's default clang, e.g. clang-14 on bookworm; libFuzzer ships in libclang-rt-<major>-dev).
#   tests/fuzz/libfuzzer.sh            prints the clang++ to use, or fails saying what was missing
set -euo pipefail
cxx="${FUZZ_CLANG:-clang++}"
probe="$(mktemp -d)"
trap 'rm -rf "$probe"' EXIT
cat >"$probe/probe.cpp" <<'EOF'
#include <cstddef>
#include <cstdint>
extern "C" int LLVMFuzzerTestOneInput(const uint8_t *, size_t) { return 0; }
EOF
links() {
  command -v "$cxx" >/dev/null &&
    "$cxx" -fsanitize=fuzzer,address,undefined "$probe/probe.cpp" -o "$probe/probe" 2>/dev/null
}
if ! links; then
  command -v apt-get >/dev/null || { echo "no $cxx with libFuzzer and no apt-get to install it" >&2; exit 1; }
  echo "installing clang and libFuzzer (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  command -v "$cxx" >/dev/null || apt-get install -y -qq clang >&2
  if ! links; then
    major="$("$cxx" -dumpversion | cut -d. -f1)"
    apt-get install -y -qq "libclang-rt-$major-dev" >&2
  fi
  links || { echo "$cxx still cannot link -fsanitize=fuzzer after installing clang and libclang-rt" >&2; exit 1; }
fi
command -v "$cxx"
