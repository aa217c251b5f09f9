#!/usr/bin/env bash
# Build llama.cpp's `llama-bench`, `llama-server` and `llama-completion` from the very source llama-cpp-python was built from.
#
# The reference binaries must run the same kernels as Hearth's engine, so they come from the llama.cpp
# commit vendored in the pinned llama-cpp-python sdist and are configured the way llama-cpp-python's
# build configures its shared libraries (see the sdist's CMakeLists.txt and pyproject.toml):
#   - Release (scikit-build-core's default build type), shared libraries (`BUILD_SHARED_LIBS=On`);
#   - ggml defaults: GGML_NATIVE=ON (-march=native), OpenMP, llamafile sgemm, CPU repack;
#   - the same extra C/C++ flags Hearth's wheel was built with (scripts/engine-flags.sh; override with
#     HEARTH_LLAMA_CFLAGS);
#   - no network at build or run time: LLAMA_CURL is deprecated and ignored in this llama.cpp, so
#     LLAMA_OPENSSL=OFF, and the server's web UI is neither downloaded (LLAMA_USE_PREBUILT_UI=OFF) nor
#     built with npm (LLAMA_BUILD_UI=OFF); llama-server then serves the API without the bundled page.
#
# Idempotent: the sdist is fetched only if missing, extracted only once, and cmake rebuilds only what
# changed. Usage: bench/build_llamacpp.sh   (env: PYTHON, JOBS, HEARTH_LLAMA_CFLAGS)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
JOBS="${JOBS:-2}"
. "$ROOT/scripts/engine-flags.sh"
CFLAGS_EXTRA="${HEARTH_LLAMA_CFLAGS:-$ENGINE_CFLAGS}"

VERSION="$("$PYTHON" -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))')"
SDIST_DIR="$ROOT/.build/sdist"
SRC_PARENT="$ROOT/.build/src"
SRC="$SRC_PARENT/llama_cpp_python-$VERSION"
LLAMA_SRC="$SRC/vendor/llama.cpp"
BUILD="$ROOT/.build/llamacpp"
SDIST="$SDIST_DIR/llama_cpp_python-$VERSION.tar.gz"

echo "llama-cpp-python $VERSION (installed in $("$PYTHON" -c 'import sys; print(sys.prefix)'))"

# 1. the sdist
if [[ ! -f "$SDIST" ]]; then
    mkdir -p "$SDIST_DIR"
    "$PYTHON" -m pip download --no-binary :all: --no-deps --dest "$SDIST_DIR" "llama-cpp-python==$VERSION"
fi
[[ -f "$SDIST" ]] || { echo "error: $SDIST not found after download" >&2; exit 1; }

# 2. the source tree (extract to a temporary name first so a half-extracted tree never looks complete)
if [[ ! -f "$LLAMA_SRC/CMakeLists.txt" ]]; then
    mkdir -p "$SRC_PARENT"
    tmp="$(mktemp -d "$SRC_PARENT/.extract.XXXXXX")"
    tar -xzf "$SDIST" -C "$tmp"
    rm -rf "$SRC"
    mv "$tmp/llama_cpp_python-$VERSION" "$SRC"
    rmdir "$tmp"
fi

# 3. configure (cheap when nothing changed) and build the three targets
GENERATOR=()
command -v ninja >/dev/null && GENERATOR=(-G Ninja)
if [[ -f "$BUILD/CMakeCache.txt" ]] && ! grep -q "^CMAKE_HOME_DIRECTORY:INTERNAL=$LLAMA_SRC\$" "$BUILD/CMakeCache.txt"; then
    rm -rf "$BUILD"  # configured from another source tree (another version): start over
fi
if [[ -f "$BUILD/CMakeCache.txt" ]]; then
    GENERATOR=()  # the generator of an existing build directory cannot change
fi
cmake -S "$LLAMA_SRC" -B "$BUILD" "${GENERATOR[@]}" \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_FLAGS="$CFLAGS_EXTRA" \
    -DCMAKE_CXX_FLAGS="$CFLAGS_EXTRA" \
    -DBUILD_SHARED_LIBS=ON \
    -DGGML_NATIVE=ON \
    -DLLAMA_OPENSSL=OFF \
    -DLLAMA_USE_PREBUILT_UI=OFF \
    -DLLAMA_BUILD_UI=OFF \
    -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_TOOLS=ON \
    -DLLAMA_BUILD_SERVER=ON
cmake --build "$BUILD" --config Release -j "$JOBS" --target llama-bench llama-server llama-completion

echo
echo "llama.cpp commit: $(git -C "$LLAMA_SRC" rev-parse HEAD 2>/dev/null || echo unknown)"
echo "flags: CMAKE_C_FLAGS=CMAKE_CXX_FLAGS='$CFLAGS_EXTRA' GGML_NATIVE=ON Release shared"
echo "llama-bench:  $BUILD/bin/llama-bench"
echo "llama-server: $BUILD/bin/llama-server"
echo "llama-completion: $BUILD/bin/llama-completion"
