"""The store lock: one writer at a time, across threads and processes.

Every change to a store (import, copy, create, remove, garbage collection, bundled registration) runs
while holding an exclusive `fcntl.flock` on `<home>/.lock`. The kernel drops the lock when a process dies,
so a killed writer never leaves the store locked; whatever temporary files it left are removed by the next
writer. Readers take no lock: manifests are replaced atomically, so they always see whole files.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path
from types import TracebackType

from hearth.paths import ensure_private_dir


class StoreLock:
    """An exclusive lock on a store, reentrant within one `StoreLock` object."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._threads = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    def __enter__(self) -> StoreLock:
        self._threads.acquire()
        try:
            if self._depth == 0:
                self._fd = self._acquire()
            self._depth += 1
        except BaseException:
            self._threads.release()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        self._threads.release()

    def _acquire(self) -> int:
        ensure_private_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        return fd
