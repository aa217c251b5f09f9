"""The GGUF reader: correct summaries of good files, quick clear refusals of bad ones."""

from __future__ import annotations

import json
import os
import random
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import gguf
import pytest

from hearth.errors import InvalidModelFileError
from hearth.store import GGUFInfo, read_gguf_info
from hearth.store import gguf as gguf_module
from tests.store.store_samples import (
    ARCH,
    CHAT_TEMPLATE,
    ONE_TENSOR,
    gstr,
    i64,
    kv,
    kv_str,
    kv_u32,
    raw_gguf,
    tensor,
    u32,
    u64,
    write_tiny_model,
)

T = gguf.GGUFValueType
Q = gguf.GGMLQuantizationType
HUGE = 2**62


def test_reads_tiny_model(make_model: Callable[..., Path]) -> None:
    path = make_model()
    info = read_gguf_info(path)
    assert info.architecture == "llama"
    assert info.name == "Tiny Test Model"
    assert info.context_length == 256
    assert (info.embedding_length, info.block_count, info.head_count, info.head_count_kv) == (32, 1, 4, 2)
    assert info.chat_template == CHAT_TEMPLATE
    assert (info.bos_token_id, info.eos_token_id, info.tokenizer_model) == (1, 2, "gpt2")
    assert info.license == "mit"
    assert info.quantization == "F32"
    assert info.tensor_count == 2
    assert info.parameter_count == 64 * 32 + 32
    assert info.file_size == path.stat().st_size
    assert info.gguf_version == 3


def test_agrees_with_gguf_reader(make_model: Callable[..., Path]) -> None:
    path = make_model(extra_rows=7)
    ours = read_gguf_info(path)
    reader = gguf.GGUFReader(path)
    assert ours.tensor_count == len(reader.tensors)
    assert ours.parameter_count == sum(int(t.n_elements) for t in reader.tensors)
    assert ours.architecture == reader.fields["general.architecture"].contents()


def test_quantization_falls_back_to_the_main_tensor_type(make_model: Callable[..., Path]) -> None:
    assert read_gguf_info(make_model(file_type=None)).quantization == "F32"
    assert read_gguf_info(make_model(file_type=gguf.LlamaFileType.MOSTLY_Q4_K_M)).quantization == "Q4_K_M"


def test_optional_fields_may_be_missing(make_model: Callable[..., Path]) -> None:
    info = read_gguf_info(make_model(license=None, chat_template=None))
    assert info.license is None and info.chat_template is None


def test_info_round_trips_through_json(make_model: Callable[..., Path]) -> None:
    info = read_gguf_info(make_model())
    assert GGUFInfo.from_dict(json.loads(json.dumps(info.to_dict()))) == info
    with pytest.raises(ValueError):
        GGUFInfo.from_dict({**info.to_dict(), "parameter_count": "many"})


def test_bundled_file_is_read_quickly(bundled_file: Path) -> None:
    start = time.perf_counter()
    info = read_gguf_info(bundled_file)
    elapsed = time.perf_counter() - start
    assert elapsed < 0.5, f"reading the bundled model's header took {elapsed:.2f} s"
    assert info.architecture == "llama"
    assert info.context_length == 8192
    assert info.quantization == "Q4_1"
    assert info.license == "apache-2.0"
    assert info.tensor_count == 272
    assert info.chat_template and "<|im_start|>" in info.chat_template


def test_hand_built_baseline_is_valid(tmp_path: Path) -> None:
    """The malformed corpus below differs from this valid file in one way each."""
    path = tmp_path / "ok.gguf"
    path.write_bytes(raw_gguf())
    assert read_gguf_info(path).parameter_count == 8


# -- the malformed corpus -----------------------------------------------------------------------------


def _valid_bytes(tmp_path: Path) -> bytes:
    return write_tiny_model(tmp_path / "valid.gguf").read_bytes()


def _cut(fraction_of: str) -> Callable[[Path], bytes]:
    """A valid tiny model cut short inside the named section."""
    def build(tmp_path: Path) -> bytes:
        data = _valid_bytes(tmp_path)
        reader = gguf.GGUFReader(tmp_path / "valid.gguf")
        first_tensor_info = reader.fields["GGUF.kv_count"].offset + 8
        for field in reader.fields.values():
            first_tensor_info = max(first_tensor_info, field.offset + sum(p.nbytes for p in field.parts))
        ends = {"header": 12, "kv": first_tensor_info // 2, "tensor-info": first_tensor_info + 10,
                "data": reader.data_offset + (len(data) - reader.data_offset) // 2}
        return data[:ends[fraction_of]]
    return build


def _flip_type(tmp_path: Path) -> bytes:
    """A valid file whose first tensor claims an unknown ggml type."""
    data = bytearray(_valid_bytes(tmp_path))
    name = gstr("token_embd.weight")
    at = data.index(name) + len(name) + 4 + 2 * 8
    data[at:at + 4] = u32(999)
    return bytes(data)


def _nested(depth: int) -> bytes:
    payload = u32(T.UINT8) + u64(1) + b"\x01"
    for _ in range(depth):
        payload = u32(T.ARRAY) + u64(1) + payload
    return kv("deep", T.ARRAY, payload)


def _plain(data: bytes) -> Callable[[Path], bytes]:
    return lambda tmp_path: data


MALFORMED: dict[str, Callable[[Path], bytes]] = {
    "empty file": _plain(b""),
    "only magic": _plain(b"GGUF"),
    "bad magic": _plain(raw_gguf(magic=b"GGML")),
    "safetensors-like": _plain(u64(64) + b'{"__metadata__":{}}' + b" " * 64),
    "version 0": _plain(raw_gguf(version=0)),
    "version 1": _plain(raw_gguf(version=1)),
    "version 99": _plain(raw_gguf(version=99)),
    "big-endian": _plain(raw_gguf(version=3 << 24)),
    "truncated in header": _cut("header"),
    "truncated in kv": _cut("kv"),
    "truncated in tensor info": _cut("tensor-info"),
    "data cut at 50%": _cut("data"),
    "n_tensors 2**62": _plain(raw_gguf(n_tensors=HUGE)),
    "n_kv 2**62": _plain(raw_gguf(n_kv=HUGE)),
    "n_kv larger than the file": _plain(raw_gguf(n_kv=1000)),
    "key length 2**62": _plain(raw_gguf(kvs=[ARCH, gstr("k", length=HUGE) + u32(T.UINT8) + b"\0"])),
    "empty key": _plain(raw_gguf(kvs=[ARCH, kv("", T.UINT8, b"\0")])),
    "duplicate key": _plain(raw_gguf(kvs=[ARCH, ARCH])),
    "string length 2**62": _plain(raw_gguf(kvs=[ARCH, kv("s", T.STRING, gstr("x", length=HUGE))])),
    "kept string length 2**62": _plain(raw_gguf(kvs=[kv("general.architecture", T.STRING,
                                                      gstr("x", length=HUGE))])),
    "array count 2**62": _plain(raw_gguf(kvs=[ARCH, kv("a", T.ARRAY, u32(T.UINT32) + u64(HUGE))])),
    "string array count 2**62": _plain(raw_gguf(kvs=[ARCH, kv("a", T.ARRAY, u32(T.STRING) + u64(HUGE))])),
    "string in array past the end": _plain(raw_gguf(kvs=[ARCH, kv("a", T.ARRAY, u32(T.STRING) + u64(2)
                                                                  + gstr("ok") + gstr("x", length=10**6))])),
    "unknown value type": _plain(raw_gguf(kvs=[ARCH, kv("x", 99, b"\0" * 8)])),
    "unknown array item type": _plain(raw_gguf(kvs=[ARCH, kv("x", T.ARRAY, u32(77) + u64(1) + b"\0")])),
    "nested arrays": _plain(raw_gguf(kvs=[ARCH, _nested(1)])),
    "nested arrays too deep": _plain(raw_gguf(kvs=[ARCH, _nested(10_000)])),
    "alignment not a power of two": _plain(raw_gguf(kvs=[ARCH, kv_u32("general.alignment", 3)])),
    "alignment zero": _plain(raw_gguf(kvs=[ARCH, kv_u32("general.alignment", 0)])),
    "alignment of the wrong type": _plain(raw_gguf(kvs=[ARCH, kv_str("general.alignment", "32")])),
    "no tensors": _plain(raw_gguf(tensors=[])),
    "no architecture": _plain(raw_gguf(kvs=[kv_u32("llama.context_length", 8)])),
    "lora adapter": _plain(raw_gguf(kvs=[ARCH, kv_str("general.type", "adapter")])),
    "later part of a split model": _plain(raw_gguf(kvs=[ARCH, kv(b"split.count", T.UINT16, b"\x03\x00"),
                                                        kv(b"split.no", T.UINT16, b"\x01\x00")])),
    "tensor name too long": _plain(raw_gguf(tensors=[tensor("t" * 100, [8])])),
    "tensor name length 2**62": _plain(raw_gguf(tensors=[gstr("w", length=HUGE) + u32(1) + i64(8)])),
    "duplicate tensor name": _plain(raw_gguf(tensors=[ONE_TENSOR, tensor("w", [8], offset=32)],
                                             data=b"\0" * 64)),
    "five dimensions": _plain(raw_gguf(tensors=[tensor("w", [1, 1, 1, 1, 8])])),
    "n_dims 2**31": _plain(raw_gguf(tensors=[tensor("w", [8], n_dims=2**31)])),
    "negative dimension": _plain(raw_gguf(tensors=[tensor("w", [-8])])),
    "dims product overflow": _plain(raw_gguf(tensors=[tensor("w", [2**40, 2**40])])),
    "unknown tensor type": _plain(raw_gguf(tensors=[tensor("w", [8], ttype=999)])),
    "unknown tensor type in a real file": _flip_type,
    "row not a whole block": _plain(raw_gguf(tensors=[tensor("w", [10], ttype=Q.Q4_0)], data=b"\0" * 32)),
    "tensor offset past end": _plain(raw_gguf(tensors=[tensor("w", [8], offset=2**40)])),
    "misaligned data offset": _plain(raw_gguf(tensors=[ONE_TENSOR, tensor("v", [4], offset=33)],
                                              data=b"\0" * 64)),
    "overlapping tensors": _plain(raw_gguf(tensors=[tensor("w", [16]), tensor("v", [8], offset=32)],
                                           data=b"\0" * 96)),
    "tensor data past end": _plain(raw_gguf(tensors=[tensor("w", [1024])])),
    "random bytes": _plain(random.Random(7).randbytes(4096)),
    "random after a good header": _plain(b"GGUF" + u32(3) + random.Random(8).randbytes(4096)),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_file_is_refused_quickly(case: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(MALFORMED[case](tmp_path))
    _assert_refused(path)


def test_corpus_is_big_enough() -> None:
    assert len(MALFORMED) >= 20


def test_directory_is_refused(tmp_path: Path) -> None:
    _assert_refused(tmp_path, "directory")


def test_missing_file_is_refused(tmp_path: Path) -> None:
    _assert_refused(tmp_path / "nope.gguf", "no such file")


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    path = tmp_path / "pipe.gguf"
    os.mkfifo(path)
    _assert_refused(path, "not a regular file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file_is_refused(make_model: Callable[..., Path]) -> None:
    path = make_model()
    path.chmod(0)
    _assert_refused(path, "could not be read")


def test_open_failure_is_refused(make_model: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """The same refusal as above, for runs as root (who can read a chmod 0 file)."""
    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(gguf_module, "open", denied, raising=False)
    _assert_refused(make_model(), "Permission denied")


def test_huge_sparse_file_is_refused_quickly(tmp_path: Path) -> None:
    """Millions of claimed empty strings in a big sparse file: refused by the total-string budget."""
    path = tmp_path / "sparse.gguf"
    head = raw_gguf(kvs=[ARCH, kv("a", T.ARRAY, u32(T.STRING) + u64(2**27))], tensors=[], n_tensors=1,
                    data=b"")
    with open(path, "wb") as handle:
        handle.write(head)
        handle.truncate(2**30 + len(head))  # 1 GiB of zeros: each a valid empty string
    _assert_refused(path, "strings")


def _assert_refused(path: Path, words: str | None = None) -> None:
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(InvalidModelFileError) as caught:
            read_gguf_info(path)
    finally:
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    message = str(caught.value)
    assert str(path) in message
    if words:
        assert words in message
    assert elapsed < 1.0, f"took {elapsed:.2f} s"
    assert peak < 50 * 2**20, f"peak memory {peak / 2**20:.1f} MiB"
