"""Resumable downloads into `$HEARTH_HOME/downloads/`, one `sha256-<hex>.partial` file per remote file.

`huggingface_hub` (2.x) resumes a broken connection within one run (`http_get` re-requests the rest with
`Range` after a dropped connection or a stall of `HF_HUB_DOWNLOAD_TIMEOUT` seconds, up to five times
without progress), but it writes each run to a fresh temporary file and deletes it on failure, so a Ctrl-C
or a killed process starts over. Hearth keeps its own partial file, named by the sha256 the hub advertises,
and hands `http_get` the bytes already there as `resume_size`: the next run asks only for the rest.

The partial file is never a model: the caller verifies its sha256 and size and only then adds it to the
store (hard-linked, so no second copy is written). An flock on `<partial>.lock` keeps two processes from
writing the same file; the lock file also says what the partial is (repository, file, size), for
`leftovers`. A partial is deleted when it cannot be resumed: a body that ended short of the advertised
size, or a failed hash check. A full disk keeps it: once there is room, the same command continues.

Abandoned partials (a pull given up on) are `leftovers`: `clean` deletes them (all, or those untouched for
`STALE_AFTER`), never one another process is still writing.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from hearth.errors import ConflictError, DownloadError, InsufficientStorageError, UnsafeRedirectError
from hearth.hub.client import RemoteFile, auth_headers, file_url, hf, translate_errors
from hearth.paths import ensure_private_dir
from hearth.store.names import inside, parse_digest
from hearth.units import size_text

DISK_MARGIN = 256 << 20  # keep this much free beyond the download itself
STALE_AFTER = 24 * 3600.0  # a partial untouched this long is abandoned
PARTIAL_SUFFIX = ".partial"
ByteProgress = Callable[[int, int], None]  # (completed, total)


def partial_path(folder: Path, digest: str) -> Path:
    """Where the partial download of the file with `digest` lives (the digest is validated first)."""
    return inside(folder, "sha256-" + parse_digest(digest).removeprefix("sha256:") + ".partial")


def download(file: RemoteFile, commit: str, folder: Path, progress: ByteProgress | None = None) -> Path:
    """Fetch `file` (resuming a partial one) and return the complete partial file; DownloadError if it fails."""
    if file.digest is None:
        raise DownloadError(f"the hub advertises no sha256 for {file.filename}, so Hearth cannot verify it",
                            hint="only files stored with Git LFS (as GGUF models are) can be pulled")
    ensure_private_dir(folder)
    path = partial_path(folder, file.digest)
    with _exclusive(path.with_suffix(".lock"), file):
        done = _resumable_size(path, file.size)
        if done < file.size:
            check_free_space(folder, file.size - done, file.filename)
        with _open(path) as handle:
            writer = _ProgressWriter(handle, path, file.size, progress)
            writer.report()
            _fetch(file, commit, writer, done)
        size = path.stat().st_size
        if size != file.size:
            discard(path)
            raise DownloadError(f"the download of {file.filename} ended at {size} of {file.size} bytes",
                                hint="run the same command again")
    return path


@dataclass(frozen=True)
class Leftover:
    """A partial download on disk: what it is (if its lock file says), how much of it is there, and since when."""

    path: Path
    size: int
    total: int | None
    source: str | None  # hf.co/OWNER/REPO/FILE
    modified: float  # time of the last byte written
    busy: bool = False  # another process is downloading it right now

    def to_dict(self) -> dict[str, object]:
        """For `--json` output."""
        return {"path": str(self.path), "size": self.size, "total": self.total, "source": self.source,
                "modified": self.modified, "busy": self.busy}


def leftovers(folder: Path) -> list[Leftover]:
    """Every partial download in `folder`, oldest first."""
    if not folder.is_dir():
        return []
    found = []
    for path in folder.glob("sha256-*" + PARTIAL_SUFFIX):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        info = _read_info(path.with_suffix(".lock"))
        total = info.get("size")
        found.append(Leftover(path, st.st_size, total if isinstance(total, int) else None,
                              info.get("source") if isinstance(info.get("source"), str) else None,
                              st.st_mtime, _is_busy(path.with_suffix(".lock"))))
    return sorted(found, key=lambda leftover: leftover.modified)


def clean(folder: Path, *, older_than: float | None = None, keep: Collection[Path] = ()) -> list[Leftover]:
    """Delete partial downloads (only those untouched for `older_than` seconds, if given); return them.

    One another process is writing is left alone, and so are the paths in `keep` (those a pull is about to
    resume).
    """
    removed = []
    now = time.time()
    for leftover in leftovers(folder):
        if leftover.busy or leftover.path in keep:
            continue
        if older_than is not None and now - leftover.modified < older_than:
            continue
        lock = leftover.path.with_suffix(".lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # a download started meanwhile
                continue
            discard(leftover.path)
            discard(lock)
        finally:
            os.close(fd)
        removed.append(leftover)
    return removed


def check_free_space(folder: Path, needed: int, what: str) -> None:
    """InsufficientStorageError unless `folder`'s disk has `needed` bytes free (plus a margin)."""
    free = shutil.disk_usage(folder).free
    if free < needed + DISK_MARGIN:
        raise InsufficientStorageError(
            f"not enough disk space to download {what}: it needs {size_text(needed + DISK_MARGIN)} and "
            f"{folder} has {size_text(free)} free",
            hint="free some space (`hearth pull --clean` deletes abandoned downloads), or point HEARTH_HOME at a "
                 "bigger disk; what was downloaded so far is kept, and the same command continues from there")


def discard(path: Path) -> None:
    """Delete a partial download that cannot be resumed."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _fetch(file: RemoteFile, commit: str, writer: _ProgressWriter, done: int) -> None:
    url = file_url(file.repo_id, file.filename, commit)
    try:
        with translate_errors(f"hf.co/{file.repo_id}/{file.filename}"):
            hf().file_download.http_get(url, writer, resume_size=done, headers=auth_headers(),
                                        expected_size=file.size, displayed_filename=file.filename,
                                        tqdm_class=_NoBar)
    except UnsafeRedirectError:
        raise
    except DownloadError as err:
        got = writer.position
        raise DownloadError(
            f"the download of {file.filename} stopped at {size_text(got)} of {size_text(file.size)}: {err.message}",
            hint="run the same command again to resume from there") from None
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            writer.close_quietly()  # what reached the disk is kept: the hash check at the end catches any flaw
            raise InsufficientStorageError(
                f"the disk filled up while downloading {file.filename} ({size_text(_size_of(writer.path))} of "
                f"{size_text(file.size)} kept)", hint="free some space (`hearth pull --clean` deletes abandoned "
                                                      "downloads), then run the same command again to continue"
            ) from None
        if "Consistency check failed" in str(err):  # the body ended, complete as far as HTTP knew, but short
            writer.close_and_discard()
            raise DownloadError(f"the hub sent an incomplete {file.filename} ({size_text(writer.position)} of "
                                f"{size_text(file.size)})", hint="run the same command again") from None
        raise


def _resumable_size(path: Path, size: int) -> int:
    """Bytes of a previous attempt to continue from (0, after deleting it, if it is larger than the file)."""
    try:
        done = path.stat().st_size
    except FileNotFoundError:
        return 0
    if done > size:
        discard(path)
        return 0
    return done


@contextmanager
def _exclusive(lock_path: Path, file: RemoteFile) -> Iterator[None]:
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConflictError(f"{file.filename} is already being downloaded by another Hearth process",
                                hint="wait for that download to finish, then try again") from None
        info = json.dumps({"source": f"hf.co/{file.repo_id}/{file.filename}", "size": file.size}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, info, 0)
        yield
    finally:
        os.close(fd)


@contextmanager
def _open(path: Path) -> Iterator[BinaryIO]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    handle = os.fdopen(fd, "r+b")
    try:
        handle.seek(0, os.SEEK_END)
        yield handle
    finally:
        try:
            handle.flush()
            os.fsync(handle.fileno())
        except (OSError, ValueError):  # closed after a full disk, or the disk is gone
            pass
        handle.close()


class _ProgressWriter:
    """The partial file as `http_get` sees it: writes pass through and report the position."""

    def __init__(self, handle: BinaryIO, path: Path, total: int, progress: ByteProgress | None) -> None:
        self.handle = handle
        self.path = path
        self.total = total
        self.progress = progress
        self.position = handle.tell()

    def write(self, data: bytes) -> int:
        written = self.handle.write(data)
        self.position = self.handle.tell()
        self.report()
        return written

    def report(self) -> None:
        if self.progress is not None:
            self.progress(self.position, self.total)

    def tell(self) -> int:
        return self.handle.tell()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self.handle.seek(offset, whence)

    def truncate(self, size: int | None = None) -> int:
        result = self.handle.truncate(size)
        self.position = self.handle.tell()
        return result

    def close_and_discard(self) -> None:
        self.close_quietly()
        discard(self.path)

    def close_quietly(self) -> None:
        try:
            self.handle.close()
        except OSError:  # a full disk can fail the final flush too
            pass

    def flush(self) -> None:
        self.handle.flush()


def _read_info(lock: Path) -> dict[str, object]:
    try:
        with open(lock, "rb") as handle:
            data = json.loads(handle.read(4096) or b"{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _is_busy(lock: Path) -> bool:
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class _NoBar:
    """A progress bar that shows nothing: Hearth reports progress itself."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def update(self, n: float | None = 1) -> None:
        pass


