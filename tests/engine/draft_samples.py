"""A tiny but loadable llama GGUF whose vocabulary is not SmolLM2's: a draft model that must be refused."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np


def write_foreign_vocab_model(path: Path, n_vocab: int = 300, dim: int = 32, ff: int = 64) -> Path:
    """One llama block with random weights and a 300-token byte-level vocabulary (BOS 257, EOS 258)."""
    w = gguf.GGUFWriter(str(path), arch="llama")
    w.add_name("Foreign Vocabulary")
    w.add_context_length(256)
    w.add_embedding_length(dim)
    w.add_block_count(1)
    w.add_feed_forward_length(ff)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_rope_dimension_count(dim // 4)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    tokens = [chr(i) if i >= 32 else f"<0x{i:02X}>" for i in range(256)] + ["he"]
    tokens += [f"<t{i}>" for i in range(n_vocab - len(tokens))]
    w.add_token_list(tokens)
    w.add_token_types([1] * n_vocab)
    w.add_token_merges(["h e"])
    w.add_bos_token_id(257)
    w.add_eos_token_id(258)
    rng = np.random.default_rng(0)

    def weights(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    ones = np.ones(dim, np.float32)
    for name, value in (("token_embd.weight", weights(n_vocab, dim)), ("output_norm.weight", ones),
                        ("output.weight", weights(n_vocab, dim)), ("blk.0.attn_norm.weight", ones),
                        ("blk.0.ffn_norm.weight", ones), ("blk.0.attn_q.weight", weights(dim, dim)),
                        ("blk.0.attn_k.weight", weights(dim // 2, dim)),
                        ("blk.0.attn_v.weight", weights(dim // 2, dim)),
                        ("blk.0.attn_output.weight", weights(dim, dim)), ("blk.0.ffn_gate.weight", weights(ff, dim)),
                        ("blk.0.ffn_up.weight", weights(ff, dim)), ("blk.0.ffn_down.weight", weights(dim, ff))):
        w.add_tensor(name, value)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
