"""Read what Hearth needs from a GGUF file, safely.

`read_gguf_info` walks the header itself instead of using `gguf.GGUFReader`: the reader parses every
metadata array in Python (2.3 s for the bundled model's 49k-entry vocabulary) and trusts the counts it
reads. This walker reads through a bounded window, checks every count and length against the bytes that
are left *before* it reads or skips anything, skips big arrays without decoding them, and keeps only the
handful of keys Hearth uses. It applies the same structural rules as llama.cpp's `gguf.cpp` (versions 2-3,
no nested arrays, tensor names under 64 bytes, at most 4 dimensions, known tensor types, rows a whole
number of blocks, tensor data laid out in order at aligned offsets, all of it inside the file), so a file
that passes here is one llama.cpp can at least open. Anything else raises `InvalidModelFileError`.

A model split by `gguf-split` (`NAME-00001-of-00003.gguf`, ...) is read part by part: `read_gguf_info` and
`read_gguf_header` accept its first part (which holds all the metadata) and summarise that file alone,
refuse the other parts with a sentence naming the first, and `read_gguf_part` reads any part's split keys
and tensor names so `hearth.store.split` can check that a set belongs together.
"""

from __future__ import annotations

import functools
import os
import stat
import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

if TYPE_CHECKING:
    from gguf import GGMLQuantizationType

from hearth.errors import InvalidModelFileError

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
MAX_KV = 1 << 16
MAX_TENSORS = 1 << 16
MAX_KEY_BYTES = 1 << 16
MAX_ALL_KEY_BYTES = 16 << 20
MAX_KEPT_STRING = 4 << 20
MAX_KEPT_ARRAY = 4096
MAX_STRINGS = 1 << 21  # in all metadata arrays together; a vocabulary plus merges stays under 1M
MAX_TENSOR_NAME = 64  # llama.cpp's GGML_MAX_NAME, including the terminating NUL
MAX_DIMS = 4
INT64_MAX = (1 << 63) - 1
_WINDOW = 1 << 20
_U64 = struct.Struct("<Q")
_T = TypeVar("_T")


@functools.cache
def _gguf() -> Any:
    """The `gguf` package, imported when a file is first read: it pulls in numpy and YAML, which a command
    that reads no model file (most of them, `hearth run` of an installed model included) should not pay for."""
    import gguf

    return gguf


@functools.cache
def _scalars() -> dict[int, str]:
    t = _gguf().GGUFValueType
    return {t.UINT8: "<B", t.INT8: "<b", t.UINT16: "<H", t.INT16: "<h", t.UINT32: "<I", t.INT32: "<i",
            t.FLOAT32: "<f", t.BOOL: "<?", t.UINT64: "<Q", t.INT64: "<q", t.FLOAT64: "<d"}


_ARCH_SUFFIXES = (
    ".context_length", ".embedding_length", ".block_count",
    ".attention.head_count", ".attention.head_count_kv",
    # kept for memory estimates (`hearth.fit`), not summarised in GGUFInfo
    ".feed_forward_length", ".attention.key_length", ".attention.value_length", ".attention.sliding_window",
    ".vocab_size", ".expert_count", ".expert_used_count", ".expert_feed_forward_length",
)
_KEPT_KEYS = frozenset({
    "general.architecture", "general.name", "general.license", "general.file_type", "general.alignment",
    "general.type", "split.count", "split.no", "split.tensors.count", "tokenizer.chat_template", "tokenizer.ggml.model",
    "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "adapter.type", "adapter.lora.alpha",
})


@dataclass(frozen=True)
class GGUFInfo:
    """A summary of a GGUF model's metadata (JSON-serialisable with `to_dict`)."""

    architecture: str
    name: str | None
    parameter_count: int
    quantization: str
    context_length: int | None
    embedding_length: int | None
    block_count: int | None
    head_count: int | None
    head_count_kv: int | None
    chat_template: str | None
    bos_token_id: int | None
    eos_token_id: int | None
    tokenizer_model: str | None
    license: str | None
    file_size: int
    tensor_count: int
    gguf_version: int

    def to_dict(self) -> dict[str, Any]:
        """The summary as a plain dict of JSON values."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> GGUFInfo:
        """Rebuild a summary from `to_dict` output; ValueError if a field is missing or mistyped."""
        if not isinstance(data, dict):
            raise ValueError("model info must be an object")
        values: dict[str, Any] = {}
        for f in fields(cls):
            value = data.get(f.name)
            wanted = (str,) if f.type in ("str", "str | None") else (int,)
            optional = "None" in str(f.type)
            if value is None and optional:
                values[f.name] = None
            elif isinstance(value, wanted) and not isinstance(value, bool):
                values[f.name] = value
            else:
                raise ValueError(f"model info field {f.name!r} is missing or has the wrong type")
        return cls(**values)


class _Bad(Exception):
    """A structural problem, turned into InvalidModelFileError with the file name attached."""


class _Walker:
    """A forward-only reader over a file that refuses to read or skip past its end."""

    def __init__(self, handle: BinaryIO, size: int) -> None:
        self.handle = handle
        self.size = size
        self.pos = 0
        self.buf = b""
        self.buf_start = 0
        self.strings_left = MAX_STRINGS

    def need(self, count: int, what: str) -> None:
        """Fail unless `count` more bytes exist in the file."""
        if count < 0 or count > self.size - self.pos:
            raise _Bad(f"the file is truncated or corrupt: {what} runs past the end of the file")

    def take(self, count: int, what: str) -> bytes:
        """Read exactly `count` bytes."""
        self.need(count, what)
        start = self.pos - self.buf_start
        if start + count > len(self.buf):
            self.handle.seek(self.pos)
            self.buf = self.handle.read(max(count, _WINDOW))
            self.buf_start = self.pos
            start = 0
            if len(self.buf) < count:
                raise _Bad(f"the file changed or could not be read while reading {what}")
        self.pos += count
        return self.buf[start:start + count]

    def skip(self, count: int, what: str) -> None:
        """Move forward `count` bytes without reading them."""
        self.need(count, what)
        self.pos += count

    def unpack(self, fmt: str, what: str) -> Any:
        """Read one little-endian value with struct format `fmt`."""
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))[0]

    def string(self, what: str, limit: int) -> bytes:
        """Read a GGUF string (u64 length + bytes) of at most `limit` bytes."""
        length = self.unpack("<Q", what)
        if length > limit:
            self.need(length, what)
            raise _Bad(f"{what} is {length} bytes long, more than the {limit}-byte limit")
        return self.take(length, what)

    def skip_strings(self, count: int, what: str) -> None:
        """Skip `count` GGUF strings, checking each length against the rest of the file."""
        read_u64 = _U64.unpack_from
        while count:
            # Fast path: walk the lengths already in the window without method calls per string.
            buf, base = self.buf, self.buf_start
            pos, limit = self.pos - base, len(buf) - 8
            while count and 0 <= pos <= limit:
                pos += 8 + read_u64(buf, pos)[0]
                count -= 1
            self.pos = base + pos
            self.need(0, what)  # the last length may have jumped past the end of the file
            if count:
                self.skip(self.unpack("<Q", what), what)
                count -= 1


def read_gguf_info(path: str | os.PathLike[str]) -> GGUFInfo:
    """Validate the GGUF file at `path` and summarise its metadata; InvalidModelFileError if it is bad."""
    return _read_file(Path(path), _read, "model", "a GGUF model (not safetensors or a LoRA)")


@dataclass(frozen=True)
class AdapterInfo:
    """A summary of a LoRA adapter GGUF: the architecture it was trained for and its scale."""

    architecture: str
    adapter_type: str
    alpha: float | None
    tensor_count: int
    file_size: int


def read_adapter_info(path: str | os.PathLike[str]) -> AdapterInfo:
    """Validate a LoRA adapter GGUF (`general.type` "adapter", `adapter.type` "lora"); InvalidModelFileError if not.

    Models and adapters are told apart on purpose: `read_gguf_info` refuses adapters, and this refuses models,
    so neither can be stored as the other.
    """
    return _read_file(Path(path), _read_adapter, "LoRA adapter", "a LoRA adapter in GGUF format")


@dataclass(frozen=True)
class GGUFHeader:
    """A model's summary plus the raw metadata values the walker kept, and where its tensor data starts."""

    info: GGUFInfo
    metadata: dict[str, Any]
    data_offset: int


def read_gguf_header(handle: BinaryIO, size: int, label: str) -> GGUFHeader:
    """Like `read_gguf_info`, from any seekable binary `handle` of `size` bytes (an open file, HTTP ranges).

    Only the header is read: the walker skips the tensor data, so a remote file costs its header's bytes.
    """
    try:
        if size <= 0:
            raise _Bad("the file is empty")
        return _read_with_metadata(_Walker(handle, size))
    except _Bad as err:
        raise InvalidModelFileError(
            f"{label} is not a usable GGUF model: {err}",
            hint="check that it is a GGUF model (not safetensors or a LoRA)",
        ) from None
    except OSError as err:
        raise InvalidModelFileError(f"{label} could not be read: {err.strerror or err}") from None
    except (ValueError, OverflowError, MemoryError, struct.error) as err:  # belt and braces
        raise InvalidModelFileError(f"{label} is not a usable GGUF model: {err}") from None


def _read_with_metadata(walker: _Walker) -> GGUFHeader:
    version, n_tensors, n_kv = _read_header(walker)
    kv = _read_kv(walker, n_kv)
    alignment = _alignment(kv)
    tensors = _read_tensor_infos(walker, n_tensors, alignment, split=_split_count(kv) > 1)
    info = _summarise(kv, tensors, walker.size, version)
    return GGUFHeader(info, kv, _pad(walker.pos, alignment))


def _read_file(path: Path, summarise: Callable[[_Walker], _T], kind: str, expected: str) -> _T:
    label = str(path)
    try:
        size = _regular_file_size(path)
        with open(path, "rb") as handle:
            return summarise(_Walker(handle, size))
    except _Bad as err:
        raise InvalidModelFileError(
            f"{label} is not a usable GGUF {kind}: {err}",
            hint=f"check that the file downloaded completely and is {expected}",
        ) from None
    except OSError as err:
        raise InvalidModelFileError(f"{label} could not be read: {err.strerror or err}") from None
    except (ValueError, OverflowError, MemoryError, struct.error) as err:  # belt and braces
        raise InvalidModelFileError(f"{label} is not a usable GGUF {kind}: {err}") from None


def _regular_file_size(path: Path) -> int:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise _Bad("there is no such file") from None
    if stat.S_ISDIR(st.st_mode):
        raise _Bad("it is a directory, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise _Bad("it is not a regular file")
    if st.st_size == 0:
        raise _Bad("the file is empty")
    return st.st_size


def _read(walker: _Walker) -> GGUFInfo:
    version, n_tensors, n_kv = _read_header(walker)
    kv = _read_kv(walker, n_kv)
    alignment = _alignment(kv)
    tensors = _read_tensor_infos(walker, n_tensors, alignment, split=_split_count(kv) > 1)
    return _summarise(kv, tensors, walker.size, version)


@dataclass(frozen=True)
class GGUFPart:
    """One file as a member of a split set (`split.no`, `split.count`, ...); a whole model is part 1 of 1."""

    number: int  # 1-based, as in the file name (split.no + 1)
    count: int
    tensors_total: int | None  # split.tensors.count: the tensors of the whole set
    tensor_names: tuple[str, ...]
    parameter_count: int
    file_size: int
    info: GGUFInfo | None  # the model's summary: the first part only (the others hold no model metadata)


def read_gguf_part(path: str | os.PathLike[str]) -> GGUFPart:
    """Validate one file of a (possibly) split GGUF model; InvalidModelFileError if it is not one."""
    return _read_file(Path(path), _read_part, "model part", "a GGUF model or one part of a split one")


def _read_part(walker: _Walker) -> GGUFPart:
    version, n_tensors, n_kv = _read_header(walker)
    kv = _read_kv(walker, n_kv)
    count = _split_count(kv)
    number = (_as_int(kv.get("split.no")) or 0) + 1 if count > 1 else 1
    tensors = _read_tensor_infos(walker, n_tensors, _alignment(kv), split=count > 1)
    info = _summarise(kv, tensors, walker.size, version) if number == 1 else None
    return GGUFPart(number=number, count=count, tensors_total=_as_int(kv.get("split.tensors.count")),
                    tensor_names=tuple(t.name.decode("utf-8", errors="replace") for t in tensors),
                    parameter_count=sum(t.elements for t in tensors), file_size=walker.size, info=info)


def _split_count(kv: dict[str, Any]) -> int:
    count = _as_int(kv.get("split.count"))
    return count if count is not None and count > 1 else 1


def _read_adapter(walker: _Walker) -> AdapterInfo:
    _, n_tensors, n_kv = _read_header(walker)
    kv = _read_kv(walker, n_kv)
    tensors = _read_tensor_infos(walker, n_tensors, _alignment(kv))
    if kv.get("general.type") != "adapter":
        raise _Bad("it is not an adapter (general.type is not 'adapter'); is it a model?")
    arch = kv.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise _Bad("it has no general.architecture string, so llama.cpp cannot match it to a model")
    adapter_type = kv.get("adapter.type")
    if adapter_type != "lora":
        raise _Bad(f"its adapter.type is {adapter_type!r}; only 'lora' adapters are supported")
    alpha = kv.get("adapter.lora.alpha")
    return AdapterInfo(
        architecture=arch, adapter_type=adapter_type,
        alpha=float(alpha) if isinstance(alpha, (int, float)) and not isinstance(alpha, bool) else None,
        tensor_count=len(tensors), file_size=walker.size,
    )


def _read_header(walker: _Walker) -> tuple[int, int, int]:
    magic = walker.take(4, "the file header") if walker.size >= 4 else b""
    if magic != GGUF_MAGIC:
        raise _Bad("it does not start with the GGUF magic bytes (is it a GGUF file?)")
    version = walker.unpack("<I", "the file header")
    if version & 0xFFFF == 0 and version != 0:
        raise _Bad(f"version field {version:#x} suggests a big-endian file; only little-endian is supported")
    if version not in SUPPORTED_VERSIONS:
        raise _Bad(f"GGUF version {version} is not supported (supported: 2 and 3)")
    n_tensors = walker.unpack("<Q", "the file header")
    n_kv = walker.unpack("<Q", "the file header")
    remaining = walker.size - walker.pos
    if n_kv > MAX_KV or n_kv * 13 > remaining:  # a key-value pair takes at least 13 bytes
        raise _Bad(f"it claims {n_kv} metadata entries, more than the file could hold")
    if n_tensors > MAX_TENSORS or n_tensors * 24 > remaining:  # a tensor info takes at least 24 bytes
        raise _Bad(f"it claims {n_tensors} tensors, more than the file could hold")
    return version, n_tensors, n_kv


def _read_kv(walker: _Walker, n_kv: int) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    seen: set[bytes] = set()
    key_bytes = 0
    for index in range(n_kv):
        raw_key = walker.string(f"metadata key #{index}", MAX_KEY_BYTES)
        if not raw_key:
            raise _Bad(f"metadata key #{index} is empty")
        if raw_key in seen:
            raise _Bad(f"metadata key {_show(raw_key)} appears twice")
        key_bytes += len(raw_key)
        if key_bytes > MAX_ALL_KEY_BYTES:
            raise _Bad("the metadata keys are implausibly large")
        seen.add(raw_key)
        key = raw_key.decode("utf-8", errors="replace")
        keep = key in _KEPT_KEYS or key.endswith(_ARCH_SUFFIXES)
        value = _read_value(walker, key, keep)
        if keep:
            kept[key] = value
    return kept


def _read_value(walker: _Walker, key: str, keep: bool) -> Any:
    what = f"the value of {_show(key)}"
    vtype = walker.unpack("<I", what)
    if vtype == _gguf().GGUFValueType.ARRAY:
        return _read_array(walker, key, keep)
    if vtype == _gguf().GGUFValueType.STRING:
        if not keep:
            walker.skip(walker.unpack("<Q", what), what)
            return None
        return walker.string(what, MAX_KEPT_STRING).decode("utf-8", errors="replace")
    fmt = _scalars().get(vtype)
    if fmt is None:
        raise _Bad(f"metadata key {_show(key)} has unknown value type {vtype}")
    return walker.unpack(fmt, what)


def _read_array(walker: _Walker, key: str, keep: bool) -> list[Any] | None:
    what = f"the array {_show(key)}"
    item_type = walker.unpack("<I", what)
    count = walker.unpack("<Q", what)
    if item_type == _gguf().GGUFValueType.ARRAY:
        raise _Bad(f"metadata key {_show(key)} holds nested arrays, which llama.cpp does not support")
    if item_type == _gguf().GGUFValueType.STRING:
        if count * 8 > walker.size - walker.pos:
            raise _Bad(f"the array {_show(key)} claims {count} strings, more than the file could hold")
        walker.strings_left -= count
        if walker.strings_left < 0:
            raise _Bad(f"the metadata holds more than {MAX_STRINGS} strings, far more than any real model")
        walker.skip_strings(count, what)
        return None
    fmt = _scalars().get(item_type)
    if fmt is None:
        raise _Bad(f"the array {_show(key)} has unknown item type {item_type}")
    item_size = struct.calcsize(fmt)
    if count * item_size > walker.size - walker.pos:
        raise _Bad(f"the array {_show(key)} claims {count} items, more than the file could hold")
    if not keep or count > MAX_KEPT_ARRAY:
        walker.skip(count * item_size, what)
        return None
    return list(struct.unpack(f"<{count}{fmt[1]}", walker.take(count * item_size, what)))


def _alignment(kv: dict[str, Any]) -> int:
    value = kv.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0 or value & (value - 1):
        raise _Bad(f"general.alignment must be a power of two, not {value!r}")
    return value


@dataclass(frozen=True)
class _Tensor:
    elements: int
    qtype: GGMLQuantizationType
    n_dims: int
    name: bytes = b""


def _read_tensor_infos(walker: _Walker, n_tensors: int, alignment: int, *, split: bool = False) -> list[_Tensor]:
    if n_tensors == 0 and not split:  # a split set's first part may hold only metadata (--no-tensor-first-split)
        raise _Bad("it contains no tensors (a vocabulary-only file?)")
    tensors: list[_Tensor] = []
    names: set[bytes] = set()
    expected_offset = 0
    last_end = 0
    for index in range(n_tensors):
        raw_name = walker.string(f"the name of tensor #{index}", MAX_TENSOR_NAME - 1)
        if raw_name in names:
            raise _Bad(f"tensor name {_show(raw_name)} appears twice")
        names.add(raw_name)
        label = f"tensor {_show(raw_name)}"
        tensor, nbytes = _read_tensor_shape(walker, label)
        offset = walker.unpack("<Q", f"the info of {label}")
        if offset != expected_offset:
            raise _Bad(f"{label} starts at data offset {offset}, expected {expected_offset} "
                       f"(tensor data must be laid out in order, aligned to {alignment} bytes)")
        last_end = offset + nbytes
        expected_offset = _pad(last_end, alignment)
        tensors.append(_Tensor(tensor.elements, tensor.qtype, tensor.n_dims, raw_name))
    data_start = _pad(walker.pos, alignment)
    if data_start + last_end > walker.size:
        missing = data_start + last_end - walker.size
        raise _Bad(f"the file is truncated: the tensor data needs {missing} more bytes than the file has")
    return tensors


def _read_tensor_shape(walker: _Walker, label: str) -> tuple[_Tensor, int]:
    what = f"the info of {label}"
    n_dims = walker.unpack("<I", what)
    if n_dims > MAX_DIMS:
        raise _Bad(f"{label} has {n_dims} dimensions; at most {MAX_DIMS} are allowed")
    dims = [walker.unpack("<q", what) for _ in range(n_dims)]
    if any(d < 0 for d in dims):
        raise _Bad(f"{label} has a negative dimension {dims}")
    elements = 1
    for d in dims:
        elements *= d
        if elements > INT64_MAX:
            raise _Bad(f"{label} has dimensions {dims} whose product overflows a 64-bit integer")
    raw_type = walker.unpack("<I", what)
    try:
        qtype = _gguf().GGMLQuantizationType(raw_type)
        block, type_size = _gguf().GGML_QUANT_SIZES[qtype]
    except (ValueError, KeyError):
        raise _Bad(f"{label} has unknown tensor type {raw_type}") from None
    if dims and dims[0] % block:
        raise _Bad(f"{label} of type {qtype.name} has rows of {dims[0]} values, not a multiple of {block}")
    nbytes = elements // block * type_size
    if nbytes > INT64_MAX:
        raise _Bad(f"{label} would take {nbytes} bytes, more than any file can hold")
    return _Tensor(elements, qtype, n_dims), nbytes


def _pad(value: int, alignment: int) -> int:
    return (value + alignment - 1) // alignment * alignment


def _summarise(kv: dict[str, Any], tensors: list[_Tensor], file_size: int, version: int) -> GGUFInfo:
    splits = _split_count(kv)
    number = (_as_int(kv.get("split.no")) or 0) + 1
    if splits > 1 and number != 1:
        raise _Bad(f"it is part {number} of a model split into {splits} files; give the first part "
                   f"(its name ends in -00001-of-{splits:05d}.gguf), with the others beside it")
    arch = kv.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise _Bad("it has no general.architecture string, so it is not a model llama.cpp can load")
    if kv.get("general.type") == "adapter":
        raise _Bad("it is an adapter (e.g. a LoRA), not a model")

    def arch_int(suffix: str) -> int | None:
        """An integer from the architecture's own keys (`llama.context_length`, ...)."""
        return _as_int(kv.get(f"{arch}.{suffix}"))

    return GGUFInfo(
        architecture=arch,
        name=_as_str(kv.get("general.name")),
        parameter_count=sum(t.elements for t in tensors),
        quantization=_quantization(kv.get("general.file_type"), tensors),
        context_length=arch_int("context_length"),
        embedding_length=arch_int("embedding_length"),
        block_count=arch_int("block_count"),
        head_count=arch_int("attention.head_count"),
        head_count_kv=arch_int("attention.head_count_kv"),
        chat_template=_as_str(kv.get("tokenizer.chat_template")),
        bos_token_id=_as_int(kv.get("tokenizer.ggml.bos_token_id")),
        eos_token_id=_as_int(kv.get("tokenizer.ggml.eos_token_id")),
        tokenizer_model=_as_str(kv.get("tokenizer.ggml.model")),
        license=_as_str(kv.get("general.license")),
        file_size=file_size,
        tensor_count=len(tensors),
        gguf_version=version,
    )


def _quantization(file_type: Any, tensors: list[_Tensor]) -> str:
    """The file type name (e.g. "Q4_1"), else the tensor type holding most weights."""
    if isinstance(file_type, int) and not isinstance(file_type, bool):
        try:
            member = _gguf().LlamaFileType(file_type)
        except ValueError:
            member = None
        if member is not None and member is not _gguf().LlamaFileType.GUESSED:
            return member.name.removeprefix("MOSTLY_").removeprefix("ALL_")
    weights = [t for t in tensors if t.n_dims >= 2] or tensors
    counts: Counter[str] = Counter()
    for t in weights:
        counts[t.qtype.name] += t.elements
    return counts.most_common(1)[0][0] if counts else "unknown"


def _as_int(value: Any) -> int | None:
    """An integer metadata value; for per-layer arrays, the largest entry."""
    if isinstance(value, list):
        value = max(value) if value else None
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def _as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _show(raw: bytes | str) -> str:
    """A key or name quoted for an error message, cut short and without control characters."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    text = "".join(c if c.isprintable() else "?" for c in text[:80])
    return repr(text + ("..." if len(raw) > 80 else ""))
