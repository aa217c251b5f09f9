"""`ModelShape`: the handful of numbers a model's memory use and speed depend on.

It is read from a GGUF header (`from_header`: a local file, or a remote one through HTTP range requests),
rebuilt from a stored manifest's summary when the header is not at hand (`from_info`), or taken from a
catalog entry before anything is downloaded (`from_catalog`). Missing values fall back to what is typical
for a model of that size, so an estimate is always possible; `exact` says whether the header was read.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from hearth.fit.quants import estimated_size
from hearth.store.gguf import GGUFHeader, GGUFInfo, read_gguf_header
from hearth.store.manifest import write_atomic

DEFAULT_VOCAB = 128_000
KV_BYTES_PER_VALUE = 2  # llama.cpp's default K and V cache type is f16
# bytes per value of each KV cache type, relative to f16 (q8_0: 34 bytes per 32 values, q4_0: 18)
KV_FACTORS = {"f16": 1.0, "q8_0": 34 / 64, "q4_0": 18 / 64}


@dataclass(frozen=True)
class ModelShape:
    """Sizes that decide memory and speed: weights, layers, attention heads, feed-forward width, vocabulary."""

    architecture: str
    quantization: str
    parameters: int
    weights_bytes: int
    n_layer: int
    n_embd: int
    n_head: int
    n_head_kv: int
    key_length: int
    value_length: int
    n_ff: int
    n_vocab: int
    context_length: int
    experts: int = 0
    experts_used: int = 0
    exact: bool = True
    kv_type: str = "f16"  # the KV cache's element type this model would be loaded with

    @classmethod
    def from_header(cls, header: GGUFHeader) -> ModelShape:
        """The shape recorded in a GGUF header (see `hearth.store.gguf.read_gguf_header`)."""
        info, meta = header.info, header.metadata
        arch = info.architecture

        def value(suffix: str) -> int | None:
            return _as_int(meta.get(f"{arch}.{suffix}"))

        base = cls.from_info(info, weights_bytes=max(0, info.file_size - header.data_offset))
        n_head = base.n_head
        n_ff = value("feed_forward_length") or base.n_ff
        experts_used = value("expert_used_count") or 0
        if experts_used and value("expert_feed_forward_length"):
            n_ff = (value("expert_feed_forward_length") or 0) * experts_used
        key_length = value("attention.key_length") or base.key_length
        return replace(
            base, n_ff=n_ff, key_length=key_length, value_length=value("attention.value_length") or key_length,
            n_vocab=value("vocab_size") or base.n_vocab, n_head=n_head, experts=value("expert_count") or 0,
            experts_used=experts_used, exact=True,
        )

    @classmethod
    def from_info(cls, info: GGUFInfo, *, weights_bytes: int | None = None) -> ModelShape:
        """The shape from a manifest's summary; widths the summary lacks are the usual ratios."""
        n_embd = info.embedding_length or _typical_width(info.parameter_count)
        n_head = info.head_count or max(1, n_embd // 128)
        head_dim = max(1, n_embd // n_head)
        return cls(
            architecture=info.architecture, quantization=info.quantization, parameters=info.parameter_count,
            weights_bytes=info.file_size if weights_bytes is None else weights_bytes,
            n_layer=info.block_count or _typical_layers(info.parameter_count),
            n_embd=n_embd, n_head=n_head, n_head_kv=info.head_count_kv or n_head,
            key_length=head_dim, value_length=head_dim, n_ff=4 * n_embd, n_vocab=DEFAULT_VOCAB,
            context_length=info.context_length or 4096, exact=False,
        )

    @classmethod
    def from_catalog(cls, entry: dict[str, Any], quant: str, weights_bytes: int | None = None) -> ModelShape:
        """The shape of a catalog entry (architecture numbers from the catalog; weights from the quant)."""
        params = int(entry["parameters"])
        arch = entry.get("arch") or {}
        n_embd = int(arch.get("embedding") or _typical_width(params))
        head_dim = int(arch.get("head_dim") or 128)
        n_head_kv = int(arch.get("kv_heads") or 8)
        size = weights_bytes if weights_bytes is not None else estimated_size(params, quant) or params
        return cls(
            architecture=str(entry.get("family", "unknown")), quantization=quant, parameters=params,
            weights_bytes=size, n_layer=int(arch.get("layers") or _typical_layers(params)), n_embd=n_embd,
            n_head=max(1, n_embd // head_dim), n_head_kv=n_head_kv, key_length=head_dim, value_length=head_dim,
            n_ff=int(arch.get("feed_forward") or 4 * n_embd), n_vocab=int(arch.get("vocab") or DEFAULT_VOCAB),
            context_length=int(entry.get("context_length") or 4096), exact=False,
        )

    @property
    def kv_bytes_per_token(self) -> int:
        """K and V cache bytes one context token costs across all layers (f16)."""
        per_token = self.n_layer * self.n_head_kv * (self.key_length + self.value_length) * KV_BYTES_PER_VALUE
        return int(per_token * KV_FACTORS[self.kv_type])

    def with_kv(self, kv_type: str) -> ModelShape:
        """The same model with its KV cache in `kv_type` (f16, q8_0 or q4_0)."""
        return replace(self, kv_type=kv_type)

    def with_quant(self, quant: str, weights_bytes: int | None = None) -> ModelShape:
        """The same model in another quantization (size given, or estimated from the parameter count)."""
        size = weights_bytes if weights_bytes is not None else estimated_size(self.parameters, quant)
        return replace(self, quantization=quant, weights_bytes=size if size is not None else self.weights_bytes)


def read_shape(path: str | os.PathLike[str]) -> ModelShape:
    """The shape of the local GGUF file at `path` (header only; InvalidModelFileError if it is not one)."""
    path = Path(path)
    with open(path, "rb") as handle:
        return ModelShape.from_header(read_gguf_header(handle, os.fstat(handle.fileno()).st_size, str(path)))


def _as_int(value: Any) -> int | None:
    if isinstance(value, list):  # per-layer values: the largest is the safe one for memory
        value = max((v for v in value if isinstance(v, int) and not isinstance(v, bool)), default=None)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _typical_width(parameters: int) -> int:
    """A typical embedding width for a model of this many parameters (for estimates without a header)."""
    for limit, width in ((3e8, 768), (1e9, 1024), (2e9, 2048), (4e9, 2560), (9e9, 4096), (15e9, 5120)):
        if parameters < limit:
            return width
    return 8192


def _typical_layers(parameters: int) -> int:
    for limit, layers in ((3e8, 24), (1e9, 24), (2e9, 28), (4e9, 36), (9e9, 32), (15e9, 48)):
        if parameters < limit:
            return layers
    return 80


SHAPE_CACHE_ENTRIES = 64
SHAPE_CACHE_VERSION = 1  # raise it when `read_shape` changes what it computes: older entries are then read again


def cached_shape(path: str | os.PathLike[str], cache: Path | None = None) -> ModelShape:
    """`read_shape`, remembered while the file keeps its size and modification time: in this process, and
    in the JSON file `cache` if given, so that a command that only runs a model (`hearth run`) reads no
    header (and imports no GGUF library) after the first time. A damaged or unwritable cache is ignored."""
    st = os.stat(path)
    return _remembered(os.fspath(path), st.st_size, st.st_mtime_ns, cache)


@lru_cache(maxsize=64)
def _remembered(path: str, size: int, mtime_ns: int, cache: Path | None) -> ModelShape:
    """The shape of the file `path` as it is now (`size`, `mtime_ns`): from `cache`'s entry for it if that
    entry was made for the same file, else read from its header and written there."""
    shapes = _load_cache(cache) if cache is not None else {}
    entry = shapes.get(path)
    if isinstance(entry, dict) and entry.get("size") == size and entry.get("mtime_ns") == mtime_ns:
        try:
            return ModelShape(**entry["shape"])
        except (TypeError, KeyError):  # not what this Hearth writes: read the header again
            pass
    shape = read_shape(path)
    if cache is not None:
        shapes.pop(path, None)
        shapes[path] = {"size": size, "mtime_ns": mtime_ns, "shape": asdict(shape)}
        kept = dict(list(shapes.items())[-SHAPE_CACHE_ENTRIES:])
        try:
            write_atomic(cache, json.dumps({"version": SHAPE_CACHE_VERSION, "shapes": kept}).encode())
        except OSError:
            pass
    return shape


def _load_cache(cache: Path) -> dict[str, Any]:
    try:
        data = json.loads(cache.read_bytes())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != SHAPE_CACHE_VERSION:
        return {}
    shapes = data.get("shapes")
    return shapes if isinstance(shapes, dict) else {}
