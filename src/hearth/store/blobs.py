"""Content-addressed blobs: `<home>/blobs/sha256-<hex>`, one file per distinct weights file.

A blob is written to a temporary file in the blob folder (hashing while copying), fsynced, and renamed to
its digest name only when complete, so a blob name always means the complete, verified content. Temporary
files left by a killed process start with `.tmp-` and are removed by `clean_temp` (which the store runs
while it holds its lock, when no other writer can be active).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from hearth.errors import IntegrityError, InvalidNameError
from hearth.paths import ensure_private_dir
from hearth.store.manifest import TEMP_PREFIX, fsync_dir
from hearth.store.names import inside, parse_digest

CHUNK = 1 << 20
BLOB_PREFIX = "sha256-"


def hash_file(path: Path) -> tuple[str, int]:
    """The `sha256:<hex>` digest and size of the file at `path`."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return "sha256:" + digest.hexdigest(), size


def copy_and_hash(source: BinaryIO, target: BinaryIO) -> tuple[str, int]:
    """Copy `source` to `target` in chunks, returning the digest and size of what was copied."""
    digest = hashlib.sha256()
    size = 0
    while chunk := source.read(CHUNK):
        digest.update(chunk)
        target.write(chunk)
        size += len(chunk)
    return "sha256:" + digest.hexdigest(), size


class BlobStore:
    """The blob folder of a model store."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str) -> Path:
        """Where the blob with `digest` lives (whether or not it exists)."""
        return inside(self.root, BLOB_PREFIX + parse_digest(digest).removeprefix("sha256:"))

    def add(self, source: Path, *, link: bool = False) -> tuple[str, int]:
        """Store the file at `source` as a blob (hard link if asked and possible); return digest and size."""
        ensure_private_dir(self.root)
        if link:
            added = self._add_linked(source)
            if added is not None:
                return added
        with open(source, "rb") as src:
            return self.add_stream(src)

    def add_stream(self, source: BinaryIO) -> tuple[str, int]:
        """Store everything `source` reads as a blob (written under a temporary name, then renamed)."""
        ensure_private_dir(self.root)
        fd, temp_name = tempfile.mkstemp(dir=self.root, prefix=TEMP_PREFIX)
        temp = Path(temp_name)
        try:
            with os.fdopen(fd, "wb") as target:
                digest, size = copy_and_hash(source, target)
                target.flush()
                os.fsync(target.fileno())
            self._commit(temp, digest)
        except BaseException:
            _unlink_quietly(temp)
            raise
        return digest, size

    def ensure(self, digest: str, open_source: Callable[[str], BinaryIO]) -> None:
        """Store blob `digest` from `open_source(digest)` unless it is here; IntegrityError if what it reads differs."""
        if self.path(digest).is_file():
            return
        with open_source(digest) as source:
            stored, _ = self.add_stream(source)
        if stored != digest:
            raise IntegrityError(f"a blob failed its hash check (sha256 {stored[7:19]}..., expected {digest[7:19]}...)",
                                 hint="the copy is damaged")

    def _add_linked(self, source: Path) -> tuple[str, int] | None:
        """Hard-link `source` into the blob folder, or return None so the caller copies instead."""
        temp = self.root / f"{TEMP_PREFIX}link-{os.getpid()}-{os.urandom(6).hex()}"
        try:
            os.link(source, temp)
        except OSError:  # another file system, or links not allowed: copy instead
            return None
        try:
            digest, size = hash_file(temp)
            self._commit(temp, digest)
        except BaseException:
            _unlink_quietly(temp)
            raise
        return digest, size

    def _commit(self, temp: Path, digest: str) -> None:
        """Give a complete temporary file its digest name (keeping an existing identical blob)."""
        final = self.path(digest)
        if final.exists():
            temp.unlink()
        else:
            os.replace(temp, final)
        fsync_dir(self.root)

    def remove(self, digest: str) -> bool:
        """Delete the blob with `digest`; False if it was not there."""
        try:
            self.path(digest).unlink()
        except FileNotFoundError:
            return False
        return True

    def digests(self) -> set[str]:
        """The digests of every complete blob (temporary files are not blobs)."""
        found: set[str] = set()
        if not self.root.is_dir():
            return found
        for entry in os.scandir(self.root):
            if entry.name.startswith(BLOB_PREFIX) and entry.is_file(follow_symlinks=False):
                try:
                    found.add(parse_digest(entry.name))
                except InvalidNameError:  # e.g. "sha256-junk": not ours, leave it alone
                    continue
        return found

    def clean_temp(self) -> int:
        """Delete temporary files left by killed writers; call only while holding the store lock."""
        if not self.root.is_dir():
            return 0
        removed = 0
        for entry in os.scandir(self.root):
            if entry.name.startswith(TEMP_PREFIX) and entry.is_file(follow_symlinks=False):
                removed += _unlink_quietly(Path(entry.path))
        return removed


def _unlink_quietly(path: Path) -> int:
    try:
        path.unlink()
    except OSError:
        return 0
    return 1
