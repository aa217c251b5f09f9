"""Which llama.cpp build this is, without loading it: the key under which speed measurements are kept."""

from __future__ import annotations

import hashlib
from functools import lru_cache


@lru_cache(maxsize=1)
def build_id() -> str:
    """`llama_cpp_python` version plus a digest of its native libraries' names and sizes (a rebuild with
    other flags changes them), e.g. `0.3.16+3f2a9c1d`; `unknown` when the package is not installed."""
    from importlib import metadata  # ~45 ms of imports a model worker, which never asks, should not pay

    try:
        dist = metadata.distribution("llama_cpp_python")
    except metadata.PackageNotFoundError:
        return "unknown"
    digest = hashlib.sha256()
    for file in sorted(dist.files or [], key=str):
        name = str(file)
        if name.endswith((".so", ".dylib", ".dll")) or ".so." in name:
            try:
                size = file.locate().stat().st_size
            except OSError:
                size = -1
            digest.update(f"{name}:{size}\n".encode())
    return f"{dist.version}+{digest.hexdigest()[:8]}"
