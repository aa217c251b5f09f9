"""Laptop-sensible defaults: threads = physical cores, context sized to the model and to free memory."""

from __future__ import annotations

import os

import psutil

DEFAULT_CTX = 4096
MIN_CTX = 512


def physical_cores() -> int:
    """Physical CPU cores (llama.cpp's own default; hyper-threads do not speed up decoding)."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        affinity = os.cpu_count() or 1
    cores = psutil.cpu_count(logical=False) or affinity
    return max(1, min(cores, affinity))


def default_context(n_ctx_train: int, kv_bytes_per_token: int, n_seq: int = 1,
                    available: int | None = None) -> int:
    """The context per sequence to use when none is asked for.

    `DEFAULT_CTX` tokens (like Ollama), never more than the model was trained for, and shrunk (in steps of
    256, not below `MIN_CTX`) until the KV cache of all sequences takes at most a quarter of free memory.
    """
    ctx = min(DEFAULT_CTX, n_ctx_train) if n_ctx_train > 0 else DEFAULT_CTX
    free = psutil.virtual_memory().available if available is None else available
    while ctx > MIN_CTX and ctx * kv_bytes_per_token * n_seq > free // 4:
        ctx -= 256
    return max(min(ctx, n_ctx_train or ctx), min(MIN_CTX, n_ctx_train or MIN_CTX))


def kv_bytes_per_token(n_layer: int, n_head: int, n_head_kv: int, n_embd: int) -> int:
    """f16 K and V bytes one context token costs across all layers."""
    head_dim = n_embd // max(1, n_head)
    return 2 * n_layer * max(1, n_head_kv) * head_dim * 2
