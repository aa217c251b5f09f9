"""What the parent sends a model worker: how to load the model, and jobs to run. No llama.cpp here."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from hearth.options import Options


@dataclass
class Job:
    """One generation request as the engine sees it: prompt tokens and the options its sampler reads."""

    id: int
    tokens: list[int]
    options: Options
    max_tokens: int = -1
    stop: tuple[str, ...] = ()
    ignore_eos: bool = False
    submitted_ns: int = field(default_factory=time.perf_counter_ns)


# the `flash_attention` setting's values → llama.cpp's llama_flash_attn_type (WorkerConfig.flash_attn)
FLASH_ATTN = {"auto": -1, "off": 0, "on": 1}
# the `kv_cache_type` setting's values → ggml_type (WorkerConfig.kv_type)
KV_TYPES = {"f16": 1, "q4_0": 2, "q8_0": 8}


@dataclass(frozen=True)
class WorkerConfig:
    """How to load a model: file, context size per sequence, sequences, batch and threads."""

    model_path: str
    n_ctx: int = 4096
    n_seq: int = 1
    n_batch: int = 512
    n_threads: int = 1
    n_threads_batch: int = 1
    flash_attn: int = -1
    kv_type: int = 1  # ggml_type of the K and V caches (f16)
    use_extra_bufts: bool = True
    embeddings: bool = True
    lora_paths: tuple[str, ...] = ()
    cache_bytes: int = 256 << 20
    offline: bool = False  # offline mode: the worker blocks non-loopback connections too (hearth.egress)
    # RPC workers (hearth.engine.rpc): their endpoints, how many of the last layers (output included) go to
    # their devices, and each device's share of those
    rpc_servers: tuple[str, ...] = ()
    rpc_layers: int = 0
    rpc_split: tuple[float, ...] = ()
    # speculative decoding (hearth.engine.speculative): off, ngram or draft; most tokens drafted per step; the
    # draft model's file for `draft`
    speculative: str = "off"
    draft_max: int = 16
    draft_model_path: str = ""
