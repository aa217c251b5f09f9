"""Tiny GGUF files for the store tests: valid ones written by gguf.GGUFWriter, hostile ones built by hand."""

from __future__ import annotations

import struct
from pathlib import Path

import gguf
import numpy as np

CHAT_TEMPLATE = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}"


def write_tiny_model(
    path: Path, *, arch: str = "llama", name: str = "Tiny Test Model", license: str | None = "mit",
    file_type: gguf.LlamaFileType | None = gguf.LlamaFileType.ALL_F32, seed: int = 0,
    chat_template: str | None = CHAT_TEMPLATE, extra_rows: int = 0,
) -> Path:
    """Write a small but well-formed GGUF model (two tensors, a short vocabulary) to `path`."""
    writer = gguf.GGUFWriter(str(path), arch=arch)
    writer.add_name(name)
    writer.add_context_length(256)
    writer.add_embedding_length(32)
    writer.add_block_count(1)
    writer.add_head_count(4)
    writer.add_head_count_kv(2)
    if file_type is not None:
        writer.add_file_type(file_type)
    if license is not None:
        writer.add_license(license)
    if chat_template is not None:
        writer.add_chat_template(chat_template)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list([f"tok{i}" for i in range(64)])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    rng = np.random.default_rng(seed)
    writer.add_tensor("token_embd.weight", rng.standard_normal((64 + extra_rows, 32)).astype(np.float32))
    writer.add_tensor("output_norm.weight", np.ones(32, dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


# -- hand-built files -------------------------------------------------------------------------------------

def u32(value: int) -> bytes:
    """A little-endian uint32."""
    return struct.pack("<I", value)


def u64(value: int) -> bytes:
    """A little-endian uint64."""
    return struct.pack("<Q", value)


def i64(value: int) -> bytes:
    """A little-endian int64."""
    return struct.pack("<q", value)


def gstr(text: str | bytes, length: int | None = None) -> bytes:
    """A GGUF string; `length` overrides the recorded length."""
    raw = text.encode() if isinstance(text, str) else text
    return u64(len(raw) if length is None else length) + raw


def kv(key: str | bytes, vtype: int, payload: bytes) -> bytes:
    """One metadata entry with an explicit value type and raw payload."""
    return gstr(key) + u32(vtype) + payload


def kv_str(key: str, value: str) -> bytes:
    """A string metadata entry."""
    return kv(key, gguf.GGUFValueType.STRING, gstr(value))


def kv_u32(key: str, value: int) -> bytes:
    """A uint32 metadata entry."""
    return kv(key, gguf.GGUFValueType.UINT32, u32(value))


def tensor(
    name: str | bytes, dims: list[int], ttype: int = 0, offset: int = 0, n_dims: int | None = None
) -> bytes:
    """One tensor info record."""
    count = len(dims) if n_dims is None else n_dims
    return gstr(name) + u32(count) + b"".join(i64(d) for d in dims) + u32(ttype) + u64(offset)


ARCH = kv_str("general.architecture", "llama")
ONE_TENSOR = tensor("w", [8])


def raw_gguf(
    *, magic: bytes = b"GGUF", version: int = 3, kvs: list[bytes] | None = None,
    tensors: list[bytes] | None = None, n_kv: int | None = None, n_tensors: int | None = None,
    data: bytes | None = None, alignment: int = 32,
) -> bytes:
    """A GGUF file assembled from parts; by default a valid one-tensor llama model."""
    kvs = [ARCH] if kvs is None else kvs
    tensors = [ONE_TENSOR] if tensors is None else tensors
    head = magic + u32(version) + u64(len(tensors) if n_tensors is None else n_tensors)
    head += u64(len(kvs) if n_kv is None else n_kv)
    body = head + b"".join(kvs) + b"".join(tensors)
    body += b"\0" * (-len(body) % alignment)
    return body + (b"\x01" * 32 if data is None else data)
