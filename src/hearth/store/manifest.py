"""Manifests: one small JSON file per model name, naming the blob that holds the weights.

A manifest is the only thing that makes a model exist. It is written last, after its blob is safely on
disk, and atomically (temporary file in the same folder, fsync, `os.replace`, fsync of the folder), so a
crash leaves either the old manifest or the new one, never half of one. `Manifest.from_json` checks
everything it reads and raises `StoreError` for a damaged file.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hearth.errors import HearthError, StoreError
from hearth.store.gguf import GGUFInfo
from hearth.store.names import parse_digest, parse_name
from hearth.types import Message

SCHEMA_VERSION = 1
SEED_ROLES = ("system", "user", "assistant")
TEMP_PREFIX = ".tmp-"
MAX_MANIFEST_BYTES = 8 << 20


@dataclass(frozen=True)
class Provenance:
    """Where a model came from: `source` ("import:/abs/path", "bundled:pkg==ver"), license, creation time."""

    source: str
    license: str | None = None
    created_at: str = field(default_factory=lambda: now_iso())
    base: str | None = None


@dataclass(frozen=True)
class ExternalFile:
    """A weights file outside the blob folder (the bundled model), with the stat it was verified at."""

    path: str
    size: int
    mtime_ns: int
    inode: int

    @classmethod
    def of(cls, path: Path) -> ExternalFile:
        """The current identity (size, mtime, inode) of the file at `path`."""
        st = path.stat()
        return cls(str(path), st.st_size, st.st_mtime_ns, st.st_ino)


@dataclass(frozen=True)
class Part:
    """One file of a split model: its blob's digest and size."""

    digest: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """One model name: its weights (by digest), metadata summary, defaults and provenance.

    A split model (`hearth.store.split`) lists its files in `parts`, in order: `digest` is then the first
    part's (the one llama.cpp is given, holding all the metadata) and `size` the whole set's.
    """

    name: str
    digest: str
    size: int
    info: GGUFInfo
    provenance: Provenance
    parameters: dict[str, Any] = field(default_factory=dict)
    system: str | None = None
    template: str | None = None
    external: ExternalFile | None = None
    messages: tuple[Message, ...] = ()
    adapters: tuple[str, ...] = ()
    template_source: str | None = None
    license_text: str | None = None
    parts: tuple[Part, ...] = ()

    @property
    def digests(self) -> tuple[str, ...]:
        """Every weights blob of the model, in order: the parts of a split model, else its one file."""
        return tuple(p.digest for p in self.parts) if self.parts else (self.digest,)

    @property
    def is_bundled(self) -> bool:
        """True for a model whose weights live in an installed package rather than the blob folder."""
        return self.external is not None and self.provenance.source.startswith("bundled:")

    def to_json(self) -> str:
        """The manifest as JSON text."""
        data = {
            "schema_version": SCHEMA_VERSION,
            "name": self.name,
            "digest": self.digest,
            "size": self.size,
            "info": self.info.to_dict(),
            "parameters": self.parameters,
            "system": self.system,
            "template": self.template,
            "provenance": vars(self.provenance),
            "external": None if self.external is None else vars(self.external),
        }
        # Written only when set, so manifests of plain models read the same in older versions.
        if self.messages:
            data["messages"] = [{"role": m.role, "content": m.content} for m in self.messages]
        if self.adapters:
            data["adapters"] = list(self.adapters)
        if self.template_source is not None:
            data["template_source"] = self.template_source
        if self.license_text is not None:
            data["license_text"] = self.license_text
        if self.parts:
            data["parts"] = [{"digest": p.digest, "size": p.size} for p in self.parts]
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        """Parse and check a manifest; StoreError if it is damaged or of an unknown schema."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError("the manifest is not a JSON object")
            if data.get("schema_version") != SCHEMA_VERSION:
                raise ValueError(f"unknown schema_version {data.get('schema_version')!r}")
            digest, size = parse_digest(_typed(data, "digest", str)), _count(data, "size")
            return cls(
                name=str(parse_name(_typed(data, "name", str))),
                digest=digest,
                size=size,
                info=GGUFInfo.from_dict(data.get("info")),
                provenance=_provenance(data.get("provenance")),
                parameters=_parameters(data.get("parameters")),
                system=_typed(data, "system", str, optional=True),
                template=_typed(data, "template", str, optional=True),
                external=_external(data.get("external")),
                messages=_messages(data.get("messages")),
                adapters=tuple(parse_digest(d) for d in _string_list(data, "adapters")),
                template_source=_typed(data, "template_source", str, optional=True),
                license_text=_typed(data, "license_text", str, optional=True),
                parts=_parts(data.get("parts"), digest, size),
            )
        except (ValueError, TypeError, RecursionError, HearthError) as err:
            message = err.message if isinstance(err, HearthError) else str(err)
            raise StoreError(f"damaged manifest: {message}") from None


def _typed(data: dict[str, Any], key: str, kind: type, *, optional: bool = False) -> Any:
    value = data.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"field {key!r} is missing or not a {kind.__name__}")
    return value


def _count(data: dict[str, Any], key: str) -> int:
    value = _typed(data, key, int)
    if value < 0:
        raise ValueError(f"field {key!r} is negative")
    return int(value)


def _parameters(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ValueError("field 'parameters' is not an object")
    return value


def _string_list(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"field {key!r} is not a list of strings")
    return value


def _parts(value: Any, digest: str, size: int) -> tuple[Part, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) < 2 or not all(isinstance(v, dict) for v in value):
        raise ValueError("field 'parts' is not a list of at least two {digest, size} objects")
    parts = tuple(Part(parse_digest(_typed(v, "digest", str)), _count(v, "size")) for v in value)
    if parts[0].digest != digest or sum(p.size for p in parts) != size:
        raise ValueError("field 'parts' does not match the manifest's digest and size")
    return parts


def _messages(value: Any) -> tuple[Message, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValueError("field 'messages' is not a list")
    out = []
    for item in value:
        if not isinstance(item, dict) or item.get("role") not in SEED_ROLES or not isinstance(item.get("content"), str):
            raise ValueError("field 'messages' holds an entry that is not a {role, content} message")
        out.append(Message(item["role"], item["content"]))
    return tuple(out)


def _provenance(value: Any) -> Provenance:
    if not isinstance(value, dict):
        raise ValueError("field 'provenance' is not an object")
    return Provenance(
        source=_typed(value, "source", str),
        license=_typed(value, "license", str, optional=True),
        created_at=_typed(value, "created_at", str),
        base=_typed(value, "base", str, optional=True),
    )


def _external(value: Any) -> ExternalFile | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("field 'external' is not an object")
    path = _typed(value, "path", str)
    if not os.path.isabs(path) or "\x00" in path:
        raise ValueError("field 'external.path' is not an absolute path")
    return ExternalFile(path, _count(value, "size"), _count(value, "mtime_ns"), _count(value, "inode"))


def now_iso() -> str:
    """The current UTC time in ISO 8601, to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def read_manifest(path: Path) -> Manifest:
    """Read and check the manifest file at `path` (StoreError if damaged or unreadable)."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_MANIFEST_BYTES + 1)
    except OSError as err:
        raise StoreError(f"cannot read manifest {path}: {err.strerror or err}") from None
    if len(raw) > MAX_MANIFEST_BYTES:
        raise StoreError(f"damaged manifest {path}: larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        return Manifest.from_json(raw)
    except StoreError as err:
        raise StoreError(f"{err.message} ({path})", hint="remove the file or re-import the model") from None


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so readers see the old or the new content, never a mix."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        _unlink_quietly(Path(temp))
        raise
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (a rename or unlink) to disk, where the platform allows it."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass
