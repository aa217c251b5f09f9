"""`export_bundle`: chosen models, a wheelhouse, a README and an `install` script, and BUNDLE.json last.

The order makes a stopped export harmless: the folder is first marked incomplete, the models' files and
the wheels are written (each through a temporary name), files an earlier export left are pruned, and only
then is BUNDLE.json written, atomically. The wheelhouse is found before anything is written, so a missing
wheel (MissingWheelsError) leaves the folder as it was.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import string
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

from hearth import __version__
from hearth.bundle.files import BundleWriter, Progress
from hearth.bundle.index import INCOMPLETE, INDEX, BundleIndex, ModelEntry, WheelEntry, file_stem
from hearth.bundle.wheels import REQUIREMENTS, Wheelhouse, no_download, plan
from hearth.errors import (
    ConflictError,
    InsufficientStorageError,
    InvalidRequestError,
    StoreError,
)
from hearth.store import Manifest, ModelStore
from hearth.store.blobs import BLOB_PREFIX
from hearth.store.manifest import now_iso
from hearth.units import size_text

FAT32_LIMIT = (4 << 30) - 1  # the largest file FAT32 holds
DEFAULT_PART_SIZE = FAT32_LIMIT
MIN_PART_SIZE = 1 << 20
MAX_PIECES = 999


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote: the models, the wheels (and skipped requirements), the files, size and time."""

    folder: Path
    models: list[Manifest]
    wheels: list[WheelEntry] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    files: int = 0
    size: int = 0
    seconds: float = 0.0


def export_bundle(store: ModelStore, folder: Path, names: Sequence[str], *, part_size: int = DEFAULT_PART_SIZE,
                  wheels: bool = True, wheel_dirs: Sequence[Path] = (), offline: bool = False,
                  progress: Progress | None = None) -> ExportReport:
    """Write the models `names` (and, with `wheels`, Hearth and what it needs) to `folder` as a bundle.

    `offline` (offline mode) never downloads a wheel: one found nowhere on this machine is reported missing.
    """
    started = time.monotonic()
    if part_size < MIN_PART_SIZE:
        raise InvalidRequestError(f"the part size must be at least {size_text(MIN_PART_SIZE)}", field="part_size")
    manifests = _chosen(store, names)
    folder = Path(folder).absolute()
    _check_target(folder)
    emit = progress or (lambda event: None)
    house = None
    if wheels:
        emit({"status": "finding wheels for Hearth and every package it needs"})
        house = plan(wheel_dirs, lambda line: emit({"status": line}), no_download if offline else None)
    try:
        blob_bytes = _weights_size(store, manifests)
        _check_space(folder, blob_bytes)
        writer = BundleWriter(folder, progress, blob_bytes + (house.size if house else 0))
        writer.begin()
        taken: set[str] = set()
        models = [_write_model(writer, store, m, part_size, taken) for m in manifests]
        entries = house.write(writer) if house else []
        index = _index(models, house, entries)
        writer.add_bytes("README.md", _readme(index, manifests).encode("utf-8"))
        if house is not None:
            writer.add_bytes("install", _data("bundle-install.sh"))
        writer.prune()
        index = replace(index, files=dict(writer.files))
        writer.finish(index)
    finally:
        if house is not None:
            house.close()
    return ExportReport(folder, manifests, entries, house.skipped if house else [], len(index.files), index.size,
                        time.monotonic() - started)


def _chosen(store: ModelStore, names: Sequence[str]) -> list[Manifest]:
    """The manifests of `names` (each once), their weights checked to be present; NotFoundError first."""
    if not names:
        raise InvalidRequestError("say which models to export", hint="e.g. --model smollm2:135m", field="models")
    manifests = {}
    for name in names:
        manifest = store.get(name)
        store.model_path(manifest)
        store.adapter_paths(manifest)
        manifests[manifest.name] = manifest
    return list(manifests.values())


def _check_target(folder: Path) -> None:
    """Refuse a folder that holds something other than a bundle (an export would mix with it)."""
    if folder.exists() and not folder.is_dir():
        raise InvalidRequestError(f"{folder} is a file, not a folder")
    if not folder.is_dir() or (folder / INDEX).exists() or (folder / INCOMPLETE).exists():
        return
    if any(folder.iterdir()):
        raise ConflictError(f"{folder} is not empty and holds no Hearth bundle",
                            hint="give a new or empty folder, e.g. a folder on the stick: /media/stick/hearth")


def _check_space(folder: Path, needed: int) -> None:
    """Refuse at once when the models alone cannot fit (what an earlier export left there counts as free)."""
    probe = folder if folder.is_dir() else next(p for p in folder.parents if p.is_dir())
    free = shutil.disk_usage(probe).free
    for root, _, files in os.walk(folder / "models"):
        free += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    if needed > free:
        raise InsufficientStorageError(f"the models need {size_text(needed)} but the disk holding {folder} has "
                                       f"{size_text(free)} free", hint="use a larger stick, or fewer models")


def _weights_size(store: ModelStore, manifests: list[Manifest]) -> int:
    """The bytes of the models' weights, each blob counted once (a persona shares its base model's)."""
    sizes = {}
    for manifest in manifests:
        paths = [*store.weight_paths(manifest), *store.adapter_paths(manifest)]
        sizes.update(zip([*manifest.digests, *manifest.adapters], [p.stat().st_size for p in paths], strict=True))
    return sum(sizes.values())


def _write_model(writer: BundleWriter, store: ModelStore, manifest: Manifest, part_size: int,
                 taken: set[str]) -> ModelEntry:
    """Write one model's blobs (split when larger than `part_size`), manifest and license."""
    stem = file_stem(manifest.name, taken)
    sources = zip([*manifest.digests, *manifest.adapters],
                  [*store.weight_paths(manifest), *store.adapter_paths(manifest)], strict=True)
    blobs = {digest: _write_blob(writer, digest, path, part_size) for digest, path in sources}
    manifest_rel, license_rel = f"models/manifests/{stem}.json", f"models/licenses/{stem}.txt"
    writer.add_bytes(manifest_rel, manifest.to_json().encode("utf-8"))
    writer.add_bytes(license_rel, _license(manifest).encode("utf-8"))
    return ModelEntry(manifest.name, manifest_rel, license_rel, manifest.size, blobs)


def _write_blob(writer: BundleWriter, digest: str, path: Path, part_size: int) -> tuple[str, ...]:
    """Copy a blob (checking it against its digest on the way) as one file or as numbered parts."""
    base = "models/blobs/" + BLOB_PREFIX + digest.removeprefix("sha256:")
    size = path.stat().st_size
    count = max(1, -(-size // part_size))
    if count > MAX_PIECES:
        raise InvalidRequestError(f"a part size of {size_text(part_size)} would split {path.name} into {count} "
                                  f"files; the most is {MAX_PIECES}", field="part_size")
    names = (base,) if count == 1 else tuple(f"{base}.part{n:03d}" for n in range(1, count + 1))
    if names[0] in writer.files:  # another model of this bundle shares it
        return names
    whole = hashlib.sha256()
    with open(path, "rb") as source:
        for number, rel in enumerate(names):
            writer.add_copy(rel, source, min(part_size, size - number * part_size), whole)
    if "sha256:" + whole.hexdigest() != digest:
        raise StoreError(f"{path} failed its hash check while it was exported: the store's copy is damaged",
                         hint="remove the model and import or pull it again")
    return names


def _license(manifest: Manifest) -> str:
    """The license file of a model: its license's name, and its full text when the model has one."""
    name = manifest.provenance.license or manifest.info.license or "unknown (not stated in the model)"
    lines = [f"Model: {manifest.name}", f"License: {name}", f"Source: {manifest.provenance.source}", ""]
    if manifest.license_text:
        lines += [manifest.license_text, ""]
    return "\n".join(lines)


def _index(models: list[ModelEntry], house: Wheelhouse | None, entries: list[WheelEntry]) -> BundleIndex:
    return BundleIndex(
        created_at=now_iso(), hearth_version=__version__, python=f"{sys.version_info[0]}.{sys.version_info[1]}",
        os=sys.platform, machine=platform.machine().lower(), cpu=_cpu_name(), models=tuple(models),
        wheels=tuple(entries), requirements=REQUIREMENTS if house else None,
        skipped=tuple(house.skipped) if house else (),
    )


def _readme(index: BundleIndex, manifests: list[Manifest]) -> str:
    """The bundle's README, from the template in hearth/data."""
    models = "\n".join(f"- {m.name} ({size_text(m.size)}, {m.info.quantization}, license: "
                       f"{m.provenance.license or m.info.license or 'unknown'})" for m in manifests)
    template = string.Template(_data("bundle-readme.md" if index.wheels else "bundle-readme-models.md").decode())
    return template.substitute(models=models, created=index.created_at, hearth=index.hearth_version,
                               python=index.python, os=index.os, machine=index.machine, cpu=index.cpu,
                               wheels=len(index.wheels) or "no")


def _data(name: str) -> bytes:
    return resources.files("hearth").joinpath(f"data/{name}").read_bytes()


def _cpu_name() -> str:
    """This computer's CPU model, as the engine wheel in the bundle was compiled for it."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
