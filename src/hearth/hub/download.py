"""Resumable downloads into `$HEARTH_HOME/downloads/`, one `sha256-<hex>.partial` file per remote file.

`huggingface_hub` (2.x) resumes a broken connection within one run (`http_get` re-requests the rest with
`Range` after a dropped connection or a stall of `HF_HUB_DOWNLOAD_TIMEOUT` seconds, up to five times
without progress), but it writes each run to a fresh temporary file and deletes it on failure, so a Ctrl-C
or a killed process starts over. Hearth keeps its own partial file, named by the sha256 the hub advertises,
and hands `http_get` the bytes already there as `resume_size`: the next run asks only for the rest.

The partial file is never a model: the caller verifies its sha256 and size and only then adds it to the
store (hard-linked, so no second copy is written). An flock on `<partial>.lock` keeps two processes from
writing the same file. A partial is deleted when it cannot be resumed: a body that ended short of the
advertised size, a full disk, or a failed hash check.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from hearth.errors import ConflictError, DownloadError, InsufficientStorageError
from hearth.hub.client import RemoteFile, auth_headers, file_url, hf, translate_errors
from hearth.paths import ensure_private_dir
from hearth.store.names import inside, parse_digest
from hearth.units import size_text

DISK_MARGIN = 256 << 20  # keep this much free beyond the download itself
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


def check_free_space(folder: Path, needed: int, what: str) -> None:
    """InsufficientStorageError unless `folder`'s disk has `needed` bytes free (plus a margin)."""
    free = shutil.disk_usage(folder).free
    if free < needed + DISK_MARGIN:
        raise InsufficientStorageError(
            f"not enough disk space to download {what}: it needs {size_text(needed + DISK_MARGIN)} and "
            f"{folder} has {size_text(free)} free",
            hint="free some space, or point HEARTH_HOME at a bigger disk")


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
    except DownloadError as err:
        got = writer.position
        raise DownloadError(
            f"the download of {file.filename} stopped at {size_text(got)} of {size_text(file.size)}: {err.message}",
            hint="run the same command again to resume from there") from None
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            writer.close_and_discard()
            raise InsufficientStorageError(f"the disk filled up while downloading {file.filename}",
                                           hint="free some space, or point HEARTH_HOME at a bigger disk") from None
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
        try:
            self.handle.close()
        except OSError:  # a full disk can fail the final flush too
            pass
        discard(self.path)

    def flush(self) -> None:
        self.handle.flush()


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


