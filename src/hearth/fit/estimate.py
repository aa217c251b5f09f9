"""How much memory a loaded model takes, and how fast it will generate, before it is loaded.

A model worker's resident memory is, measured on the bundled model (see tests/fit/test_accuracy.py):

    weights          the tensor data, memory-mapped and all touched by generation
    KV cache         layers × KV heads × (key + value length) × 2 bytes (f16), for every context token of every
                     parallel sequence; llama.cpp zeroes it at load, so it is all resident at once
    compute          the activations of one 512-token batch (feed-forward and attention widths) plus logits;
                     llama.cpp reserves more (logits for a whole batch) but Hearth never touches that part.
                     Without flash attention (Hearth's default on CPUs, see docs/benchmarks.md) the
                     attention scores of that batch against a full context (heads × context × batch × 4
                     bytes) take the activations' place when larger; they are touched once a long prompt
                     has filled the context (measured on the bundled model: +36 MB at 2048 tokens)
    runtime          the worker's Python interpreter and llama.cpp (~48 MB) plus the vocabulary (~400 B a token)

Speed: generating a token reads every weight once, so it is bound by memory bandwidth, plus the arithmetic
(two operations per weight) the cores have to do; both are rough, hence "≈" wherever it is shown.
"""

from __future__ import annotations

from dataclasses import dataclass

from hearth.fit.shape import ModelShape

MB = 1 << 20
RUNTIME_BYTES = 48 * MB
VOCAB_BYTES_PER_TOKEN = 400
COMPUTE_FIXED = 2 * MB
BATCH = 512  # tokens per llama.cpp micro-batch (WorkerConfig.n_batch)
CTX_STEP = 256  # llama.cpp pads the context to a multiple of 256
BANDWIDTH_EFFICIENCY = 0.7  # share of a streaming read benchmark that llama.cpp's kernels reach
FLOPS_PER_CORE = 40e9  # quantized dot products per core per second (AVX2 class), for the compute bound
PER_TOKEN_OVERHEAD = 0.002  # seconds: sampling, detokenizing, Python between steps


@dataclass(frozen=True)
class Estimate:
    """Predicted resident memory of a loaded model, by part (bytes)."""

    weights: int
    kv_cache: int
    compute: int
    runtime: int
    n_ctx: int
    n_seq: int

    @property
    def total(self) -> int:
        """Everything together."""
        return self.weights + self.kv_cache + self.compute + self.runtime

    def to_dict(self) -> dict[str, int]:
        """The parts and the total, for JSON output."""
        return {"weights": self.weights, "kv_cache": self.kv_cache, "compute": self.compute,
                "runtime": self.runtime, "total": self.total, "num_ctx": self.n_ctx, "num_parallel": self.n_seq}


def padded(n_ctx: int) -> int:
    """The context llama.cpp actually allocates for `n_ctx` tokens."""
    return max(CTX_STEP, -(-n_ctx // CTX_STEP) * CTX_STEP)


def estimate(shape: ModelShape, n_ctx: int, n_seq: int = 1, n_batch: int = BATCH, *,
             flash_attention: bool = False) -> Estimate:
    """Memory of `shape` loaded with `n_ctx` context tokens for each of `n_seq` parallel sequences."""
    n_seq = max(1, n_seq)
    kv = shape.kv_bytes_per_token * padded(n_ctx) * n_seq
    tokens = min(n_batch, padded(n_ctx) * n_seq)
    widths = 3 * shape.n_ff + 6 * shape.n_embd + (shape.n_head + 2 * shape.n_head_kv) * shape.key_length
    activations = tokens * widths * 4
    if not flash_attention:  # the batch's attention scores against the whole context, in f32; llama.cpp's
        # allocator reuses the feed-forward buffers for them, so the larger of the two is what is resident
        activations = max(activations, shape.n_head * padded(n_ctx) * tokens * 4)
    compute = activations + n_seq * shape.n_vocab * 4 * 2 + COMPUTE_FIXED
    runtime = RUNTIME_BYTES + shape.n_vocab * VOCAB_BYTES_PER_TOKEN
    return Estimate(shape.weights_bytes, kv, compute, runtime, n_ctx, n_seq)


def largest_context(shape: ModelShape, n_seq: int, limit: int) -> int | None:
    """The largest context (a multiple of 256, at most the trained length) whose estimate stays within `limit`."""
    ceiling = max(CTX_STEP, shape.context_length // CTX_STEP * CTX_STEP)
    if estimate(shape, CTX_STEP, n_seq).total > limit:
        return None
    low, high = 1, ceiling // CTX_STEP
    while low < high:  # binary search over multiples of 256: memory grows with the context
        mid = (low + high + 1) // 2
        if estimate(shape, mid * CTX_STEP, n_seq).total <= limit:
            low = mid
        else:
            high = mid - 1
    return low * CTX_STEP


def tokens_per_second(shape: ModelShape, bandwidth: float, cores: int) -> float:
    """Approximate generation speed: weights streamed once per token, or the arithmetic, whichever is slower."""
    if bandwidth <= 0:
        return 0.0
    active = shape.weights_bytes
    if shape.experts and shape.experts_used:  # mixture of experts: only the chosen experts are read
        active = int(shape.weights_bytes * (1 / 3 + 2 / 3 * min(1.0, shape.experts_used / shape.experts)))
    memory_time = active / (bandwidth * BANDWIDTH_EFFICIENCY)
    compute_time = 2 * shape.parameters * (active / max(1, shape.weights_bytes)) / (FLOPS_PER_CORE * max(1, cores))
    return 1.0 / (memory_time + compute_time + PER_TOKEN_OVERHEAD)
