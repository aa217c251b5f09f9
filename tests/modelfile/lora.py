"""Tiny LoRA adapters in GGUF for the bundled model (llama architecture, 30 layers, n_embd 576).

llama.cpp (`src/llama-adapter.cpp`) pairs tensors named `<model tensor>.lora_a` / `.lora_b` and checks, for
a model weight with ne = [n_in, n_out]: lora_a has ne = [n_in, r] and lora_b has ne = [r, n_out]. numpy
shapes are the reverse of ggml's ne, so lora_a is a (r, n_in) array and lora_b an (n_out, r) one. The
update applied is scale * alpha / r * B @ A.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

N_EMBD = 576
N_LAYERS = 30


def write_lora(path: Path, *, strength: float, rank: int = 4, layers: int = N_LAYERS, seed: int = 0,
               arch: str = "llama") -> Path:
    """A LoRA on every layer's attn_q and attn_output; `strength` 0 leaves the model unchanged."""
    writer = gguf.GGUFWriter(str(path), arch=arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(rank))
    rng = np.random.default_rng(seed)
    for layer in range(layers):
        for name in ("attn_q", "attn_output"):
            a = rng.standard_normal((rank, N_EMBD)).astype(np.float32)
            b = (rng.standard_normal((N_EMBD, rank)) * strength).astype(np.float32)
            writer.add_tensor(f"blk.{layer}.{name}.weight.lora_a", a)
            writer.add_tensor(f"blk.{layer}.{name}.weight.lora_b", b)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
