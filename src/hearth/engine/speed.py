"""Measuring this machine's speed for one engine setting: the worker side of calibration.

`measure_speed` runs inside a model worker on its loaded model. It opens a context with the setting asked
for (flash attention, decode threads, batch size), then times, with the wall clock:

- decoding `gen` tokens one by one at an empty context (`decode_empty`, tokens/s),
- evaluating a `depth`-token prompt in chunks of `batch` (`prompt`, tokens/s),
- decoding `gen` more tokens on top of that prompt (`decode_deep`, tokens/s).

Token ids are a fixed spread over the vocabulary: speed does not depend on what the tokens say. Which
setting wins is decided above the engine (`hearth.fit.tuning`), which chooses the trials.
"""

from __future__ import annotations

import time

from hearth.engine.llama import Batch, Context, Model

WARMUP_TOKENS = 2  # the first decodes build llama.cpp's compute graph and touch the weights
WARMUP_CHUNK = 32  # and one small prompt chunk: the first multi-token batch allocates its own buffers


def measure_speed(model: Model, *, flash_attn: int, threads: int, threads_batch: int, batch: int, depth: int,
                  gen: int, kv_type: int = 1) -> dict[str, float]:
    """Tokens/s for decoding at an empty context, for a `depth`-token prompt, and for decoding after it."""
    n_ctx = max(64, depth + gen + WARMUP_TOKENS + 8)
    ctx = Context(model, n_ctx=n_ctx, n_seq=1, n_batch=max(1, min(batch, n_ctx)), n_threads=threads,
                  n_threads_batch=threads_batch, flash_attn=flash_attn, kv_type=kv_type)
    chunk = Batch(max(1, min(batch, n_ctx)), 1)
    try:
        tokens = _tokens(model.n_vocab, depth + gen + WARMUP_TOKENS)
        _decode_one_by_one(ctx, chunk, tokens[:WARMUP_TOKENS], 0)
        ctx.clear()
        if depth:
            _decode_chunks(ctx, chunk, tokens[:min(depth, WARMUP_CHUNK)], batch)
            ctx.clear()
        out = {"decode_empty": 0.0, "prompt": 0.0, "decode_deep": 0.0}
        if gen:
            out["decode_empty"] = gen / _decode_one_by_one(ctx, chunk, tokens[:gen], 0)
            ctx.clear()
        if depth:
            out["prompt"] = depth / _decode_chunks(ctx, chunk, tokens[:depth], batch)
            if gen:
                out["decode_deep"] = gen / _decode_one_by_one(ctx, chunk, tokens[depth:depth + gen], depth)
        return out
    finally:
        chunk.close()
        ctx.close()


def _tokens(n_vocab: int, count: int) -> list[int]:
    step = 7919  # a prime: consecutive ids land far apart in the vocabulary
    return [(100 + i * step) % max(1, n_vocab - 100) for i in range(count)]


def _decode_one_by_one(ctx: Context, chunk: Batch, tokens: list[int], start: int) -> float:
    started = time.perf_counter()
    for i, token in enumerate(tokens):
        chunk.clear()
        chunk.add(token, start + i, 0, True)
        ctx.decode(chunk)
    return max(time.perf_counter() - started, 1e-9)


def _decode_chunks(ctx: Context, chunk: Batch, tokens: list[int], size: int) -> float:
    started = time.perf_counter()
    for first in range(0, len(tokens), size):
        chunk.clear()
        part = tokens[first:first + size]
        for i, token in enumerate(part):
            chunk.add(token, first + i, 0, i == len(part) - 1)
        ctx.decode(chunk)
    return max(time.perf_counter() - started, 1e-9)
