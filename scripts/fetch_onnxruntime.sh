#!/usr/bin/env bash
# Fetch ONNX Runtime C headers + a runtime library into third_party/onnxruntime/ (gitignored).
#
# Headers: Debian 13 (trixie) `libonnxruntime-dev`, downloaded with `apt-get download` through a
# private apt config (the system's sources and lists are not touched). Library: the
# `libonnxruntime.so.1.*` that the onnxruntime Python wheel ships, symlinked as
# libonnxruntime.so.1 / libonnxruntime.so (the wheel lacks both names). Trixie's headers declare
# C API version 21; the library is newer, serves every older API version, and the C library asks
# for the version of its headers (ORT_API_VERSION), so the pair works.
#
#   scripts/fetch_onnxruntime.sh [PYTHON]      # PYTHON defaults to .venv/bin/python
# Env: ORT_DEB_MIRROR (default: the first http(s) Debian URI in /etc/apt/sources.list*),
#      ORT_DEB_SUITE (default trixie), ORT_DEST (default third_party/onnxruntime).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
py="${1:-$root/.venv/bin/python}"
dest="${ORT_DEST:-$root/third_party/onnxruntime}"
suite="${ORT_DEB_SUITE:-trixie}"

if [[ -f "$dest/include/onnxruntime_c_api.h" && -e "$dest/lib/libonnxruntime.so" ]]; then
    echo "onnxruntime: already in $dest"; exit 0
fi

# --- library from the Python wheel -------------------------------------------------------------
capi="$("$py" -c 'import onnxruntime, os; print(os.path.join(os.path.dirname(onnxruntime.__file__), "capi"))')"
lib="$(ls "$capi"/libonnxruntime.so.1.* 2>/dev/null | head -n1 || true)"
[[ -n "$lib" ]] || { echo "fetch_onnxruntime: no libonnxruntime.so.1.* in $capi" >&2; exit 1; }

# --- headers from Debian's libonnxruntime-dev ---------------------------------------------------
mirror="${ORT_DEB_MIRROR:-}"
if [[ -z "$mirror" ]]; then
    mirror="$(grep -hoE '^(URIs:|deb)[[:space:]]+https?://[^[:space:]]+' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
              | awk '{print $2}' | grep -v -- '-security' | head -n1 || true)"
fi
[[ -n "$mirror" ]] || { echo "fetch_onnxruntime: no Debian mirror found; set ORT_DEB_MIRROR" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/etc/preferences.d" "$work/etc/apt.conf.d"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
echo "deb [signed-by=$keyring] $mirror $suite main" > "$work/sources.list"
apt_opts=(-o Dir::Etc::sourcelist="$work/sources.list" -o Dir::Etc::sourceparts=- \
          -o Dir::Etc::preferencesparts="$work/etc/preferences.d" -o Dir::Etc::parts="$work/etc/apt.conf.d" \
          -o Dir::State::Lists="$work/lists" -o Dir::Cache="$work/cache" -o Dir::State::status=/dev/null \
          -o APT::Get::List-Cleanup=0 -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
echo "onnxruntime: headers from $mirror $suite (libonnxruntime-dev)"
apt-get "${apt_opts[@]}" -qq update
(cd "$work" && apt-get "${apt_opts[@]}" -qq download libonnxruntime-dev)
deb="$(ls "$work"/libonnxruntime-dev_*.deb | head -n1)"
dpkg-deb -x "$deb" "$work/x"

mkdir -p "$dest/include" "$dest/lib"
hdr="$(dirname "$(find "$work/x" -name onnxruntime_c_api.h | head -n1)")"
[[ -f "$hdr/onnxruntime_c_api.h" ]] || { echo "fetch_onnxruntime: no onnxruntime_c_api.h in $deb" >&2; exit 1; }
cp -r "$hdr"/. "$dest/include/"
basename "$deb" > "$dest/SOURCE"
echo "$lib" >> "$dest/SOURCE"
ln -sf "$lib" "$dest/lib/$(basename "$lib")"
ln -sf "$(basename "$lib")" "$dest/lib/libonnxruntime.so.1"
ln -sf libonnxruntime.so.1 "$dest/lib/libonnxruntime.so"
echo "onnxruntime: headers $(grep -m1 -oE 'define ORT_API_VERSION [0-9]+' "$dest/include/onnxruntime_c_api.h"), library $(basename "$lib") -> $dest"
