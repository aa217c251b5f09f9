#!/usr/bin/env bash
# Build llama-cpp-python from its sdist with the flags Hearth needs, into .build/wheels/.
#
# Why not `pip install llama-cpp-python`: ggml's AMX code path segfaults on the first decode on some Xeon
# CPUs, so we compile without AMX (laptops have no AMX, so this costs users nothing). pip's wheel cache
# ignores CMAKE_ARGS and would silently reuse a wheel built without these flags, so we build the wheel
# ourselves with --no-cache-dir and install that exact file.
#
# The wheel's name cannot say which flags built it, so a stamp beside it does: the wheel is reused only when
# .build/wheels/llama_cpp_python-VERSION.cmake-args holds exactly the CMAKE_ARGS below (changing a flag in
# scripts/engine-flags.sh rebuilds it; the old wheel is removed, so `make setup` installs the new one).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
VERSION=$(sed -n 's/.*"llama-cpp-python==\([0-9.]*\)".*/\1/p' pyproject.toml)
SDIST_DIR=.build/sdist
WHEEL_DIR=.build/wheels
STAMP="$WHEEL_DIR/llama_cpp_python-$VERSION.cmake-args"
mkdir -p "$SDIST_DIR" "$WHEEL_DIR"
. scripts/engine-flags.sh
FLAGS="$ENGINE_CFLAGS"
ARGS="-DCMAKE_C_FLAGS='$FLAGS' -DCMAKE_CXX_FLAGS='$FLAGS' $ENGINE_CMAKE_ARGS"
if ls "$WHEEL_DIR"/llama_cpp_python-"$VERSION"-*.whl >/dev/null 2>&1; then
  if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$ARGS" ]; then
    exit 0
  fi
  echo "The engine wheel in $WHEEL_DIR was built with other flags than: $ARGS" >&2
fi
if [ ! -f "$SDIST_DIR/llama_cpp_python-$VERSION.tar.gz" ]; then
  "$PY" -m pip download -q --no-binary :all: --no-deps "llama-cpp-python==$VERSION" -d "$SDIST_DIR"
fi
NEW_DIR="$WHEEL_DIR/.new"
rm -rf "$NEW_DIR"
mkdir -p "$NEW_DIR"
echo "Compiling llama.cpp (llama-cpp-python $VERSION) without AMX, with RPC; this takes about 5 minutes on 2 cores..." >&2
CMAKE_ARGS="$ARGS" \
CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
  "$PY" -m pip wheel -q --no-deps --no-cache-dir "$SDIST_DIR/llama_cpp_python-$VERSION.tar.gz" -w "$NEW_DIR" &
build=$!
started=$(date +%s)
# pip is silent while the compiler works: say every 30 s that it still is, so nobody thinks it hung
( while sleep 30 && kill -0 "$build" 2>/dev/null; do
    echo "  still compiling llama.cpp... $(( $(date +%s) - started )) s so far" >&2
  done ) &
ticker=$!
status=0
wait "$build" || status=$?
kill "$ticker" 2>/dev/null || true
if [ "$status" -ne 0 ]; then
  echo "Compiling llama.cpp failed (status $status): see the compiler's messages above." >&2
  exit "$status"
fi
# the new wheel replaces every older one (the Makefile installs llama_cpp_python-*.whl), then the stamp says
# which flags made it
rm -f "$WHEEL_DIR"/llama_cpp_python-"$VERSION"-*.whl "$STAMP"
mv "$NEW_DIR"/llama_cpp_python-"$VERSION"-*.whl "$WHEEL_DIR"/
rmdir "$NEW_DIR"
printf '%s\n' "$ARGS" > "$STAMP"
echo "Compiled llama.cpp in $(( $(date +%s) - started )) s." >&2
