"""Fixtures for the history tests: a history database in a private folder, and a recorded answer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hearth.history import Entry, History, ModelUsed
from hearth.types import Stats

USED = ModelUsed("smollm2:135m", "sha256:" + "b" * 64, "{{ messages }}", {"temperature": 0.2, "num_ctx": 4096})


def answer(text: str, tokens: int = 5) -> Entry:
    """An assistant entry as the CLI records one."""
    return Entry("assistant", text, USED, Stats(prompt_tokens=30, completion_tokens=tokens, eval_ns=10**8,
                                                prompt_ns=10**7, total_ns=2 * 10**8), "stop")


def file_bytes(folder: Path) -> bytes:
    """Everything SQLite keeps on disk for the database (main file, WAL, shared memory)."""
    return b"".join(p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file())


@pytest.fixture
def history(tmp_path: Path) -> Iterator[History]:
    """An empty history database under the test's temporary folder."""
    log = History(tmp_path / "history" / "history.db")
    yield log
    log.close()
