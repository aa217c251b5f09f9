"""The history database: one SQLite file, its schema as ordered named migrations, and real deletion.

    <home>/history/             0700
    <home>/history/history.db   0600 (SQLite creates -wal and -shm with the same mode)

Crash safety comes from SQLite itself: WAL journal, `synchronous=FULL`, and every change in one transaction
(a turn is its question and its answer together), so `kill -9` at any moment leaves the state before or
after a transaction, never between. Deletion is meant to be final: `secure_delete` overwrites freed pages
with zeros, the full-text index is merged so no segment keeps the old words, then `VACUUM` rewrites the
file and a `TRUNCATE` checkpoint empties the WAL. Temporary data stays in memory (`temp_store=MEMORY`), so
VACUUM never writes conversation text to a temporary file.

Migrations, like `llm`'s, are applied in order and recorded by name in `_migrations`; a database that
records a migration this version does not know was written by a newer Hearth and is refused for writing.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hearth.errors import StoreError
from hearth.paths import ensure_private_dir

BUSY_TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class Migration:
    """One step of the schema, applied once, in order, inside a transaction."""

    name: str
    sql: str


MIGRATIONS: list[Migration] = [
    Migration("m001_conversations", """
        CREATE TABLE conversations (
            id TEXT PRIMARY KEY,
            source TEXT NOT NULL,                -- chat, run, replay, api, web
            parent_id TEXT REFERENCES conversations(id) ON DELETE SET NULL,
            parent_at INTEGER,                   -- the messages 1..parent_at were copied from the parent
            created_at TEXT NOT NULL,            -- ISO 8601, UTC
            updated_at TEXT NOT NULL
        );
        CREATE INDEX conversations_updated ON conversations(updated_at);
        CREATE TABLE templates (
            digest TEXT PRIMARY KEY,             -- sha256 of the template text, stored once
            source TEXT NOT NULL
        );
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,           -- 1, 2, 3... within the conversation
            role TEXT NOT NULL,
            content TEXT NOT NULL,
            created_at TEXT NOT NULL,
            model TEXT,                          -- for answers: the model name...
            model_digest TEXT,                   -- ...the exact weights...
            template_digest TEXT REFERENCES templates(digest),
            parameters TEXT,                     -- ...and the options in effect (JSON)
            finish_reason TEXT,
            prompt_tokens INTEGER,
            cached_tokens INTEGER,
            completion_tokens INTEGER,
            load_ns INTEGER,
            prompt_ns INTEGER,
            eval_ns INTEGER,
            total_ns INTEGER,
            UNIQUE (conversation_id, position)
        );
    """),
    Migration("m002_messages_fts", """
        CREATE VIRTUAL TABLE messages_fts USING fts5(
            content, content='messages', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER messages_ai AFTER INSERT ON messages BEGIN
            INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
        END;
        CREATE TRIGGER messages_ad AFTER DELETE ON messages BEGIN
            INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
        END;
        CREATE TRIGGER messages_au AFTER UPDATE OF content ON messages BEGIN
            INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
            INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
        END;
        INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');
    """),
    Migration("m003_conversation_titles", """
        ALTER TABLE conversations ADD COLUMN title TEXT;  -- set by rename; NULL: the first question is the title
    """),
    Migration("m004_responses", """
        CREATE TABLE responses (                 -- OpenAI Responses API answers a client may continue by id
            id TEXT PRIMARY KEY,
            conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,           -- the conversation's messages 1..position lead up to it
            created_at TEXT NOT NULL,
            body TEXT NOT NULL,                  -- the response object (JSON)
            items TEXT NOT NULL                  -- its input items and output items (JSON), to continue from
        );
        CREATE INDEX responses_conversation ON responses(conversation_id);
    """),
]


def default_path(home: Path) -> Path:
    """Where the history database of `home` lives."""
    return home / "history" / "history.db"


def connect(path: Path, migrations: list[Migration] | None = None, *,
            label: str = "history database") -> sqlite3.Connection:
    """Open (creating if needed, privately) and migrate the database at `path` (`label` names it in errors)."""
    try:
        ensure_private_dir(path.parent)
        _create_private(path)
    except OSError as err:
        hint = "check the permissions of that folder" + (", or set history = false" if "history" in label else "")
        raise StoreError(f"cannot create the {label} {path}: {err.strerror or err}", hint=hint) from None
    try:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False)
    except sqlite3.Error as err:
        raise StoreError(f"cannot open the {label} {path}: {err}") from None
    try:
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "secure_delete=ON",
                       "temp_store=MEMORY", f"busy_timeout={BUSY_TIMEOUT_MS}"):
            conn.execute(f"PRAGMA {pragma}")
        migrate(conn, MIGRATIONS if migrations is None else migrations, label=label)
    except sqlite3.DatabaseError as err:
        conn.close()
        raise StoreError(f"the {label} {path} is damaged or not a database: {err}",
                         hint=f"move it aside (e.g. `mv {path} {path}.broken`) and Hearth starts a new one") from None
    except BaseException:
        conn.close()
        raise
    return conn


def migrate(conn: sqlite3.Connection, migrations: list[Migration], *, label: str = "history database") -> list[str]:
    """Apply the migrations not yet recorded, in order; return their names."""
    conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    applied = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
    unknown = applied - {m.name for m in migrations}
    if unknown:
        raise StoreError(f"the {label} was written by a newer Hearth (migrations {sorted(unknown)})",
                         hint="upgrade Hearth to use it")
    done = []
    for migration in migrations:
        if migration.name in applied:
            continue
        with transaction(conn):
            if conn.execute("SELECT 1 FROM _migrations WHERE name = ?", (migration.name,)).fetchone():
                continue  # another process applied it while we waited for the lock
            for statement in _statements(migration.sql):
                conn.execute(statement)
            conn.execute("INSERT INTO _migrations VALUES (?, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))",
                         (migration.name,))
        done.append(migration.name)
    return done


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """`BEGIN IMMEDIATE` ... `COMMIT`, or `ROLLBACK` if the block raises (one writer at a time)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:  # some errors (a full disk) have already rolled it back
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def erase_freed_space(conn: sqlite3.Connection) -> bool:
    """Make deleted text unrecoverable from the files; False if a reader kept the WAL from being emptied."""
    with transaction(conn):
        conn.execute("INSERT INTO messages_fts(messages_fts) VALUES ('optimize')")
    conn.execute("VACUUM")
    busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return not busy


def _create_private(path: Path) -> None:
    """Create the file with mode 0600 before SQLite opens it (SQLite gives -wal and -shm the same mode)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    try:
        os.chmod(path, 0o600)
    except OSError:  # pragma: no cover - a file we do not own
        pass


def _statements(sql: str) -> list[str]:
    """Split a migration into statements (complete_statement keeps trigger bodies whole)."""
    statements, current = [], ""
    for line in sql.splitlines(keepends=True):
        if line.strip().startswith("--") and not current.strip():
            continue
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        raise ValueError(f"incomplete SQL statement in a migration: {current.strip()[:60]}")
    return statements

