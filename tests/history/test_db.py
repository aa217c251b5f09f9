"""The database file: ordered named migrations, private permissions, WAL, and damaged files."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from hearth.errors import StoreError
from hearth.history import MIGRATIONS, Entry, History
from hearth.history.db import connect, migrate


def test_migrations_run_once_in_order_and_are_recorded(tmp_path: Path) -> None:
    path = tmp_path / "h" / "history.db"
    conn = connect(path)
    names = [row[0] for row in conn.execute("SELECT name FROM _migrations ORDER BY rowid")]
    assert names == [m.name for m in MIGRATIONS] == sorted(names)
    assert migrate(conn, MIGRATIONS) == []  # nothing left to do
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA secure_delete").fetchone()[0] == 1
    conn.close()


def test_a_later_migration_upgrades_an_existing_database(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    old = connect(path, MIGRATIONS[:1])
    old.execute("INSERT INTO conversations VALUES ('c1', 'chat', NULL, NULL, '2020', '2020')")
    old.execute("INSERT INTO messages (conversation_id, position, role, content, created_at) "
                "VALUES ('c1', 1, 'user', 'an old sourdough question', '2020')")
    old.close()
    with History(path) as history:  # applies m002: the full-text index is built for existing messages
        assert [h.conversation_id for h in history.search("sourdough")] == ["c1"]


def test_a_database_from_a_newer_hearth_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    connect(path).execute("INSERT INTO _migrations VALUES ('m999_from_the_future', 'x')")
    with pytest.raises(StoreError, match="newer Hearth"):
        History(path)


def test_files_are_private(tmp_path: Path) -> None:
    folder = tmp_path / "history"
    with History(folder / "history.db") as history:
        history.start("chat", [Entry("user", "hello")])
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        files = sorted(p.name for p in folder.iterdir())
        assert files == ["history.db", "history.db-shm", "history.db-wal"]
        for name in files:
            assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name


def test_a_damaged_database_is_a_sentence_with_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError) as caught:
        History(path)
    assert "damaged" in caught.value.message and caught.value.hint and "mv" in caught.value.hint


def test_fts_and_database_integrity_after_use(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    with History(path) as history:
        ids = [history.start("run", [Entry("user", f"question {i}"), Entry("assistant", "answer")]) for i in range(5)]
        history.delete(ids[:2])
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.execute("INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')")  # raises if inconsistent
    conn.close()
