"""A bundle's files on the stick: written so a full disk never leaves a bundle that looks complete, read back checked.

`BundleWriter` writes each file under a temporary name (`.tmp-...`), fsyncs it and renames it into place,
recording its sha256 and size. `begin` leaves a note (`EXPORT-INCOMPLETE.txt`) and removes any old
BUNDLE.json before the first file changes; `finish` writes BUNDLE.json atomically and only then removes
the note. A stick that fills up raises InsufficientStorageError and leaves the note, no index, and no
temporary file; running the export again replaces what is there.

`PieceReader` reads a blob back from its files in order and checks each against BUNDLE.json as it ends.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from hearth.bundle.index import INCOMPLETE, INDEX, BundleIndex, FileEntry, portable
from hearth.errors import BundleError, IncompleteBundleError, InsufficientStorageError, IntegrityError
from hearth.store.blobs import CHUNK, hash_file
from hearth.store.manifest import TEMP_PREFIX, fsync_dir, write_atomic
from hearth.units import size_text

Progress = Callable[[dict[str, Any]], None]
OURS = ("models", "wheels")  # the folders an export owns; stale files in them are removed
TOP = ("install", "README.md")  # its files beside them (an export --no-wheels writes no install)
INCOMPLETE_TEXT = (
    "This Hearth bundle is incomplete: its export stopped before it finished (a full disk, or it was\n"
    "interrupted). Run the same `hearth bundle export` again to finish it, or delete this folder.\n"
    "Nothing here is installed or imported while this file is here and BUNDLE.json is not.\n"
)


class BundleWriter:
    """Writes the files of a bundle into `folder`, keeping each one's sha256 and size for BUNDLE.json."""

    def __init__(self, folder: Path, progress: Progress | None = None, total: int = 0) -> None:
        self.folder = folder
        self.files: dict[str, FileEntry] = {}
        self.total = total
        self.done = 0
        self._progress = progress

    def begin(self) -> None:
        """Mark the folder incomplete (the note first, then no BUNDLE.json) before anything in it changes."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._guarded(INCOMPLETE, lambda: write_atomic(self.folder / INCOMPLETE, INCOMPLETE_TEXT.encode()))
        (self.folder / INDEX).unlink(missing_ok=True)
        fsync_dir(self.folder)
        self._advance(0)

    def add_bytes(self, rel: str, data: bytes) -> FileEntry:
        """Write `data` as the file `rel`."""
        return self.add_copy(rel, io.BytesIO(data), len(data))

    def add_copy(self, rel: str, source: BinaryIO, length: int, whole: Any = None) -> FileEntry:
        """Copy the next `length` bytes of `source` into the file `rel` (also into the hash `whole`, if given)."""
        def produce(out: BinaryIO) -> str:
            digest = hashlib.sha256()
            left = length
            while left:
                chunk = source.read(min(CHUNK, left))
                if not chunk:
                    raise BundleError(f"{rel}: the file being exported became shorter while it was copied")
                digest.update(chunk)
                if whole is not None:
                    whole.update(chunk)
                out.write(chunk)
                left -= len(chunk)
                self._advance(len(chunk))
            return digest.hexdigest()

        return self._write(rel, produce)

    def add_generated(self, rel: str, produce: Callable[[BinaryIO, Callable[[int], None]], None]) -> FileEntry:
        """Write the file `rel` with `produce(out, advance)` (which may seek), then hash what it wrote."""
        def write(out: BinaryIO) -> None:
            produce(out, self._advance)

        return self._write(rel, write)

    def prune(self) -> list[str]:
        """Delete files an earlier export left in the bundle's own folders that this one did not write."""
        removed = []
        for top in OURS:
            for folder, _, names in os.walk(self.folder / top):
                for name in names:
                    path = Path(folder, name)
                    rel = path.relative_to(self.folder).as_posix()
                    if rel not in self.files:
                        path.unlink(missing_ok=True)
                        removed.append(rel)
        for leftover in [*self.folder.glob(TEMP_PREFIX + "*"), *[self.folder / n for n in TOP if n not in self.files]]:
            leftover.unlink(missing_ok=True)
        return removed

    def finish(self, index: BundleIndex) -> None:
        """Write BUNDLE.json (atomically, last) and then remove the note that the bundle is incomplete."""
        for top in OURS:
            if (self.folder / top).is_dir():
                fsync_dir(self.folder / top)
        self._guarded(INDEX, lambda: write_atomic(self.folder / INDEX, index.to_json().encode("ascii")))
        for name, mode in ((INDEX, 0o644), ("install", 0o755)):  # readable by all; FAT ignores this
            if (self.folder / name).is_file():
                os.chmod(self.folder / name, mode)
        (self.folder / INCOMPLETE).unlink(missing_ok=True)
        fsync_dir(self.folder)

    def _write(self, rel: str, produce: Callable[[BinaryIO], str | None]) -> FileEntry:
        """Write `rel` through a temporary file (fsynced, renamed into place); return and record its entry."""
        path = self.folder.joinpath(*portable(rel).split("/"))
        temp = path.with_name(TEMP_PREFIX + path.name)

        def write() -> str:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(temp, "wb") as out:
                digest = produce(out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, path)
            return digest or hash_file(path)[0].removeprefix("sha256:")

        try:
            digest = self._guarded(rel, write)
        finally:
            temp.unlink(missing_ok=True)
        entry = FileEntry(digest, path.stat().st_size)
        self.files[rel] = entry
        return entry

    def _guarded(self, rel: str, action: Callable[[], Any]) -> Any:
        """Run a write, turning a full or refusing disk into a typed error that says what to do."""
        try:
            return action()
        except OSError as err:
            if err.errno in (errno.ENOSPC, errno.EDQUOT):
                raise InsufficientStorageError(
                    f"the disk holding {self.folder} is full: {rel} could not be written "
                    f"({size_text(self.done)} of {size_text(self.total)} written)",
                    hint="make room (or use a larger stick) and run the same `hearth bundle export` again; the "
                         "folder is marked incomplete until then") from None
            if err.errno == errno.EFBIG:
                raise BundleError(f"the file system of {self.folder} refuses a file as large as {rel}",
                                  hint="give a smaller --part-size (FAT32 holds files under 4 GiB)") from None
            raise BundleError(f"cannot write {rel} in {self.folder}: {err.strerror or err}") from None

    def _advance(self, count: int) -> None:
        self.done += count
        if self._progress is not None and self.total:
            self._progress({"status": f"writing {self.folder.name}", "total": self.total,
                            "completed": min(self.done, self.total)})


class PieceReader(io.RawIOBase):
    """Reads one blob from its files in the bundle, in order, checking each file's size and sha256 at its end."""

    def __init__(self, folder: Path, pieces: tuple[str, ...], files: dict[str, FileEntry],
                 advance: Callable[[int], None] | None = None) -> None:
        super().__init__()
        self.folder = folder
        self.pending = list(pieces)
        self.files = files
        self.advance = advance
        self.current: BinaryIO | None = None
        self.name = ""
        self.digest = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        """A PieceReader is read from, never written."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill `buffer` from the current piece, moving to the next (after checking this one) at its end."""
        while True:
            if self.current is None:
                if not self.pending:
                    return 0
                self._open(self.pending.pop(0))
            assert self.current is not None
            count = self.current.readinto(buffer)  # type: ignore[attr-defined]
            if count:
                self.digest.update(memoryview(buffer)[:count])
                self.size += count
                if self.advance is not None:
                    self.advance(count)
                return int(count)
            self._check_piece()

    def close(self) -> None:
        """Close the piece being read."""
        if self.current is not None:
            self.current.close()
            self.current = None
        super().close()

    def _open(self, rel: str) -> None:
        self.name, self.digest, self.size = rel, hashlib.sha256(), 0
        try:
            self.current = open(self.folder.joinpath(*rel.split("/")), "rb")  # noqa: SIM115 - closed in close()
        except OSError as err:
            raise IncompleteBundleError(f"{rel} of the bundle cannot be read: {err.strerror or err}",
                                        hint="copy the whole bundle folder again") from None

    def _check_piece(self) -> None:
        assert self.current is not None
        self.current.close()
        self.current = None
        expected = self.files[self.name]
        if self.size != expected.size or self.digest.hexdigest() != expected.sha256:
            raise tampered(self.name)


def tampered(rel: str) -> IntegrityError:
    """The error for a bundle file that is not what BUNDLE.json says it is."""
    return IntegrityError(f"{rel} in the bundle failed its checksum: it was damaged or changed after the export",
                          hint="nothing was imported; copy the bundle again, or export it again", path=rel)


def check_file(folder: Path, rel: str, entry: FileEntry, limit: int) -> bytes:
    """The content of the small file `rel` (at most `limit` bytes), checked against its entry."""
    try:
        with open(folder.joinpath(*rel.split("/")), "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as err:
        raise IncompleteBundleError(f"{rel} of the bundle cannot be read: {err.strerror or err}",
                                    hint="copy the whole bundle folder again") from None
    if len(data) != entry.size or hashlib.sha256(data).hexdigest() != entry.sha256:
        raise tampered(rel)
    return data

