"""Split GGUF sets for tests, written the way llama.cpp's `gguf-split` writes them (through the `gguf` package).

`gguf.GGUFWriter(split_max_tensors=N)` writes `PREFIX-00001-of-0000M.gguf`, ... with `split.no` (u16),
`split.count` (u16) and `split.tensors.count` (i32) in every part, the model's metadata in the first part
only and the tensors spread over the parts: the same files `llama-gguf-split --split-max-tensors N` makes.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import gguf


def write_split(source: Path, folder: Path, prefix: str, max_tensors: int) -> list[Path]:
    """Split the GGUF model `source` into parts of at most `max_tensors` tensors; return them in order."""
    logging.getLogger("gguf").setLevel(logging.WARNING)
    folder.mkdir(parents=True, exist_ok=True)
    reader = gguf.GGUFReader(source)
    arch = reader.get_field(gguf.Keys.General.ARCHITECTURE)
    assert arch is not None
    writer = gguf.GGUFWriter(folder / f"{prefix}.gguf", arch.contents(), split_max_tensors=max_tensors)
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub)
    for tensor in reader.tensors:
        writer.add_tensor_info(tensor.name, tensor.data.shape, tensor.data.dtype, tensor.data.nbytes,
                               tensor.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for tensor in reader.tensors:
        writer.write_tensor_data(tensor.data, tensor_endianess=reader.endianess)
    writer.close()
    parts = sorted(folder.glob(f"{prefix}-*-of-*.gguf"))
    assert len(parts) > 1, parts
    return parts


def copy_set(parts: list[Path], folder: Path) -> list[Path]:
    """Copies of `parts` in `folder` (same names), for a test that changes or removes some of them."""
    folder.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy2(p, folder / p.name)) for p in parts]
