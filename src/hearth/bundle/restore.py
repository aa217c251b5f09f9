"""`import_bundle`: a bundle's models added to a store, every file of theirs checked first.

Before the store changes, every manifest and license file is checked against BUNDLE.json, parsed, and
matched with the blobs the bundle lists, and every blob file is checked to be there at its size. The
blobs are then copied in (`ModelStore.adopt`), each piece's sha256 checked as it is read and each blob's
digest once it is whole, and the manifests are written only after every blob passed: a damaged or
tampered file is refused by name and adds nothing. A model already here, the same, is left alone, so
importing a bundle twice changes nothing; a different model under the same name is left alone too, and
reported.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, cast

from hearth.bundle.files import PieceReader, Progress, check_file
from hearth.bundle.index import BundleIndex, ModelEntry, read_index
from hearth.errors import BundleError, IncompleteBundleError, NotFoundError, StoreError
from hearth.store import Manifest, ModelStore
from hearth.store.manifest import MAX_MANIFEST_BYTES

MAX_LICENSE_BYTES = 4 << 20


@dataclass(frozen=True)
class BundleImport:
    """What an import did: the models added, those already here, and those skipped (name, why)."""

    folder: Path
    added: list[Manifest] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def import_bundle(store: ModelStore, folder: Path, progress: Progress | None = None) -> BundleImport:
    """Add the models of the bundle in `folder` that are not here yet; IntegrityError names a bad file."""
    folder = Path(folder).absolute()
    index = read_index(folder)
    manifests = [(entry, _checked_manifest(folder, index, entry)) for entry in index.models]
    for entry, _ in manifests:
        _check_present(folder, index, entry)
    added: list[Manifest] = []
    present: list[str] = []
    skipped: list[tuple[str, str]] = []
    todo: list[Manifest] = []
    for _, manifest in manifests:
        state = _state(store, manifest)
        if state == "new":
            todo.append(manifest)
        elif state == "same":
            present.append(manifest.name)
        else:
            skipped.append((manifest.name, state))
    if todo:
        pieces = {digest: files for entry, _ in manifests for digest, files in entry.blobs.items()}
        total = sum(index.files[f].size for m in todo for d in {*m.digests, *m.adapters} for f in pieces[d])
        added = store.adopt(todo, _opener(folder, index, pieces, total, progress))
    return BundleImport(folder, added, present, skipped)


def _checked_manifest(folder: Path, index: BundleIndex, entry: ModelEntry) -> Manifest:
    """The manifest of `entry`, checked against BUNDLE.json, parsed, and matched with the bundle's blobs."""
    raw = check_file(folder, entry.manifest, index.files[entry.manifest], MAX_MANIFEST_BYTES)
    check_file(folder, entry.license, index.files[entry.license], MAX_LICENSE_BYTES)
    try:
        manifest = Manifest.from_json(raw)
    except StoreError as err:
        raise BundleError(f"{entry.manifest} of the bundle is damaged: {err.message}") from None
    if manifest.name != entry.name:
        raise BundleError(f"{entry.manifest} of the bundle describes {manifest.name!r}, not {entry.name!r}")
    lacking = [d for d in (*manifest.digests, *manifest.adapters) if d not in entry.blobs]
    if lacking:
        raise BundleError(f"the bundle lacks a weights file of {manifest.name} ({lacking[0][7:19]}...)",
                          hint="export the bundle again")
    return manifest


def _check_present(folder: Path, index: BundleIndex, entry: ModelEntry) -> None:
    """Every blob file of `entry` is in the folder at its listed size (a truncated copy is caught here)."""
    for files in entry.blobs.values():
        for rel in files:
            try:
                size = os.stat(folder.joinpath(*rel.split("/"))).st_size
            except OSError:
                raise IncompleteBundleError(f"{rel} of the bundle is missing",
                                            hint="copy the whole bundle folder again") from None
            if size != index.files[rel].size:
                raise IncompleteBundleError(f"{rel} of the bundle has the wrong size ({size} bytes, not "
                                            f"{index.files[rel].size})", hint="copy the whole bundle folder again")


def _state(store: ModelStore, manifest: Manifest) -> str:
    """"new", "same" (already here), or why the model is skipped (another model has its name)."""
    try:
        existing = store.get(manifest.name)
    except NotFoundError:
        return "new"
    if _content(existing) == _content(manifest):
        return "same"
    return (f"a different model is already called {manifest.name} here (`hearth rm {manifest.name}` first, "
            "then import again)")


def _content(m: Manifest) -> tuple[object, ...]:
    """What makes two manifests the same model (not where or when their weights were stored)."""
    return (m.digests, m.adapters, m.parameters, m.system, m.template, m.messages, m.license_text)


def _opener(folder: Path, index: BundleIndex, pieces: dict[str, tuple[str, ...]], total: int,
            progress: Progress | None) -> Callable[[str], BinaryIO]:
    """`open_blob` for `ModelStore.adopt`: a blob read from its pieces, each checked as it ends."""
    done = [0]

    def advance(count: int) -> None:
        done[0] += count
        if progress is not None and total:
            progress({"status": f"importing from {folder.name}", "total": total, "completed": done[0]})

    advance(0)

    def open_blob(digest: str) -> BinaryIO:
        return cast(BinaryIO, PieceReader(folder, pieces[digest], index.files, advance))

    return open_blob
