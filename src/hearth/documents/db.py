"""The document index: one SQLite file per HEARTH_HOME holding every collection's passages.

    <home>/documents/               0700
    <home>/documents/documents.db   0600 (and its -wal/-shm)

Tables: `collections` (a name, the embedding model its vectors came from), `files` (path, sha256, size and
mtime, the embedding model of its vectors), `chunks` (page, text, and a float32 unit vector or NULL), and
`chunks_fts`, an FTS5 index over the chunks' text (BM25). The conventions are the history database's
(`hearth.history.db`): WAL, `synchronous=FULL`, ordered named migrations, `secure_delete`.

A file is written in one transaction (its old passages out, its new ones in), so a `docs add` killed at any
moment leaves each file indexed wholly as before or wholly as after, and the next run picks up where it
stopped. Removal is real: freed pages are zeroed, the FTS index is merged, the file vacuumed and the WAL
emptied, so a removed passage's words are in none of the files.

Vectors live in the `chunks` table as BLOBs and are searched with numpy (exact cosine similarity over the
collection's matrix, cached until the collection changes): see docs/documents.md for the measurement.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from hearth.errors import InvalidRequestError, NotFoundError
from hearth.history.db import Migration, connect, transaction

if TYPE_CHECKING:  # numpy is imported where vectors are read: most commands never touch them
    import numpy as np

LABEL = "document index"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

MIGRATIONS: list[Migration] = [
    Migration("d001_collections", """
        CREATE TABLE collections (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            generation INTEGER NOT NULL DEFAULT 0  -- bumped by every change: the vector cache's key
        );
        CREATE TABLE files (
            id INTEGER PRIMARY KEY,
            collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
            path TEXT NOT NULL,                  -- absolute, resolved
            kind TEXT NOT NULL,                  -- text, html, pdf, docx
            sha256 TEXT NOT NULL,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            pages INTEGER,
            embed_model TEXT,                    -- digest of the model that embedded its chunks; NULL: none
            indexed_at TEXT NOT NULL,
            UNIQUE (collection_id, path)
        );
        CREATE TABLE chunks (
            id INTEGER PRIMARY KEY,
            file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            page INTEGER,
            text TEXT NOT NULL,
            vector BLOB                          -- float32, unit length; NULL without an embedding model
        );
        CREATE INDEX chunks_file ON chunks(file_id);
    """),
    Migration("d002_chunks_fts", """
        CREATE VIRTUAL TABLE chunks_fts USING fts5(
            text, content='chunks', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN
            INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text);
        END;
        CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN
            INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
        END;
    """),
]


@dataclass(frozen=True)
class FileRecord:
    """A file as indexed."""

    id: int
    path: str
    kind: str
    sha256: str
    size: int
    mtime_ns: int
    pages: int | None
    embed_model: str | None
    chunks: int
    indexed_at: str


@dataclass(frozen=True)
class CollectionInfo:
    """A collection: its name, how many files and passages, how many of them have vectors, and when it changed."""

    name: str
    files: int
    chunks: int
    embedded: int
    updated_at: str


@dataclass(frozen=True)
class NewChunk:
    """A passage to store."""

    position: int
    page: int | None
    text: str
    vector: bytes | None


def default_path(home: Path) -> Path:
    """Where the document index of `home` lives."""
    return home / "documents" / "documents.db"


def check_name(name: object) -> str:
    """A collection name, checked: letters, digits, `.`, `_` and `-`, at most 64 characters."""
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidRequestError(f"{str(name)[:80]!r} is not a valid collection name", field="documents",
                                  hint="use letters, digits, '.', '_' and '-' (at most 64), e.g. notes or tax-2026")
    return name


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Index:
    """The open document index (one connection; safe to share between threads, one writer at a time)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = connect(path, MIGRATIONS, label=LABEL)
        self._lock = threading.RLock()
        self._vectors: dict[int, tuple[int, str, np.ndarray, np.ndarray]] = {}

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock, transaction(self._conn) as conn:
            yield conn

    # -- collections ----------------------------------------------------------------------------------------
    def collection_id(self, name: str, *, create: bool = False) -> int:
        """The id of collection `name` (created if `create`; otherwise NotFoundError when missing)."""
        row = self._conn.execute("SELECT id FROM collections WHERE name = ?", (check_name(name),)).fetchone()
        if row is not None:
            return int(row[0])
        if not create:
            raise NotFoundError(f"there is no document collection named {name!r}",
                                hint=f"make it with `hearth docs add {name} FOLDER`; `hearth docs list` shows "
                                     "the collections")
        with self._write() as conn:
            found = conn.execute("SELECT id FROM collections WHERE name = ?", (name,)).fetchone()
            if found is not None:
                return int(found[0])
            cursor = conn.execute("INSERT INTO collections (name, created_at, updated_at) VALUES (?, ?, ?)",
                                  (name, _now(), _now()))
            return int(cursor.lastrowid or 0)

    def collections(self) -> list[CollectionInfo]:
        """Every collection, by name."""
        rows = self._conn.execute("""
            SELECT c.name, COUNT(DISTINCT f.id), COUNT(k.id), COUNT(k.vector), c.updated_at
            FROM collections c LEFT JOIN files f ON f.collection_id = c.id LEFT JOIN chunks k ON k.file_id = f.id
            GROUP BY c.id ORDER BY c.name""").fetchall()
        return [CollectionInfo(*row) for row in rows]

    def collection(self, name: str) -> CollectionInfo:
        """One collection's counts (NotFoundError if there is none)."""
        self.collection_id(name)
        return next(c for c in self.collections() if c.name == name)

    def files(self, collection: int) -> list[FileRecord]:
        """The files of a collection, by path."""
        rows = self._conn.execute("""
            SELECT f.id, f.path, f.kind, f.sha256, f.size, f.mtime_ns, f.pages, f.embed_model,
                   (SELECT COUNT(*) FROM chunks k WHERE k.file_id = f.id), f.indexed_at
            FROM files f WHERE f.collection_id = ? ORDER BY f.path""", (collection,)).fetchall()
        return [FileRecord(*row) for row in rows]

    # -- writing --------------------------------------------------------------------------------------------
    def put_file(self, collection: int, path: str, kind: str, sha256: str, size: int, mtime_ns: int,
                 pages: int | None, embed_model: str | None, chunks: list[NewChunk]) -> None:
        """Replace a file's passages with `chunks`, all in one transaction."""
        with self._write() as conn:
            conn.execute("DELETE FROM files WHERE collection_id = ? AND path = ?", (collection, path))
            cursor = conn.execute(
                "INSERT INTO files (collection_id, path, kind, sha256, size, mtime_ns, pages, embed_model, "
                "indexed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (collection, path, kind, sha256, size, mtime_ns, pages, embed_model, _now()))
            file_id = cursor.lastrowid
            conn.executemany("INSERT INTO chunks (file_id, position, page, text, vector) VALUES (?, ?, ?, ?, ?)",
                             [(file_id, c.position, c.page, c.text, c.vector) for c in chunks])
            self._touch(conn, collection)

    def touch_file(self, file_id: int, mtime_ns: int) -> None:
        """Record a new mtime for a file whose content did not change."""
        with self._write() as conn:
            conn.execute("UPDATE files SET mtime_ns = ? WHERE id = ?", (mtime_ns, file_id))

    def drop_files(self, collection: int, paths: list[str]) -> int:
        """Forget files (their passages with them); how many there were."""
        if not paths:
            return 0
        with self._write() as conn:
            count = 0
            for path in paths:
                count += conn.execute("DELETE FROM files WHERE collection_id = ? AND path = ?",
                                      (collection, path)).rowcount
            self._touch(conn, collection)
        return count

    def drop_under(self, collection: int, folder: str) -> list[str]:
        """Forget the files at or under `folder`; their paths."""
        prefix = folder.rstrip("/") + "/"
        rows = self._conn.execute(
            "SELECT path FROM files WHERE collection_id = ? AND (path = ? OR substr(path, 1, ?) = ?)",
            (collection, folder, len(prefix), prefix)).fetchall()
        paths = [r[0] for r in rows]
        self.drop_files(collection, paths)
        return paths

    def drop_collection(self, collection: int) -> None:
        """Forget a whole collection."""
        with self._write() as conn:
            conn.execute("DELETE FROM chunks WHERE file_id IN (SELECT id FROM files WHERE collection_id = ?)",
                         (collection,))
            conn.execute("DELETE FROM collections WHERE id = ?", (collection,))
        self._vectors.pop(collection, None)

    def _touch(self, conn: sqlite3.Connection, collection: int) -> None:
        conn.execute("UPDATE collections SET updated_at = ?, generation = generation + 1 WHERE id = ?",
                     (_now(), collection))

    def erase_freed_space(self) -> bool:
        """Make removed text unrecoverable from the files; False if a reader kept the WAL from being emptied."""
        with self._lock:
            with transaction(self._conn):
                self._conn.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('optimize')")
            self._conn.execute("VACUUM")
            busy, _, _ = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return not busy

    # -- reading --------------------------------------------------------------------------------------------
    def bm25(self, collection: int, match: str, limit: int) -> list[tuple[int, float]]:
        """(chunk id, BM25 score: higher is better) for an FTS5 MATCH expression, best first."""
        rows = self._conn.execute("""
            SELECT k.id, -bm25(chunks_fts) AS score FROM chunks_fts
            JOIN chunks k ON k.id = chunks_fts.rowid JOIN files f ON f.id = k.file_id
            WHERE chunks_fts MATCH ? AND f.collection_id = ? ORDER BY bm25(chunks_fts) LIMIT ?""",
                                  (match, collection, limit)).fetchall()
        return [(int(r[0]), float(r[1])) for r in rows]

    def term_stats(self, collection: int, chunk: int, terms: list[str]) -> tuple[int, list[tuple[int, bool]]]:
        """(the collection's passage count, [(passages holding the term, whether `chunk` holds it)] per term).

        Each term is matched by FTS5 itself (quoted, so its tokenizer and Porter stemming apply exactly as in
        `bm25`): "providing" is found in a passage that says "provides".
        """
        total = self._conn.execute("SELECT count(*) FROM chunks k JOIN files f ON f.id = k.file_id "
                                   "WHERE f.collection_id = ?", (collection,)).fetchone()[0]
        stats = []
        for term in terms:
            count, holds = self._conn.execute("""
                SELECT count(*), coalesce(max(chunks_fts.rowid = ?), 0) FROM chunks_fts
                JOIN chunks k ON k.id = chunks_fts.rowid JOIN files f ON f.id = k.file_id
                WHERE chunks_fts MATCH ? AND f.collection_id = ?""",
                                              (chunk, '"' + term.replace('"', '""') + '"', collection)).fetchone()
            stats.append((int(count), bool(holds)))
        return int(total), stats

    def vectors(self, collection: int, embed_model: str) -> tuple[np.ndarray, np.ndarray]:
        """(chunk ids, unit vectors as rows) of a collection's passages embedded by `embed_model` (cached)."""
        row = self._conn.execute("SELECT generation FROM collections WHERE id = ?", (collection,)).fetchone()
        generation = int(row[0]) if row else -1
        cached = self._vectors.get(collection)
        if cached is not None and cached[0] == generation and cached[1] == embed_model:
            return cached[2], cached[3]
        rows = self._conn.execute("""
            SELECT k.id, k.vector FROM chunks k JOIN files f ON f.id = k.file_id
            WHERE f.collection_id = ? AND f.embed_model = ? AND k.vector IS NOT NULL ORDER BY k.id""",
                                  (collection, embed_model)).fetchall()
        import numpy as np

        ids = np.array([r[0] for r in rows], dtype=np.int64)
        if rows:
            matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
        else:
            matrix = np.zeros((0, 0), dtype=np.float32)
        self._vectors[collection] = (generation, embed_model, ids, matrix)
        return ids, matrix

    def chunks(self, ids: list[int]) -> dict[int, tuple[str, int | None, str, int]]:
        """chunk id → (file path, page, text, position) for `ids`."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._conn.execute(f"""
            SELECT k.id, f.path, k.page, k.text, k.position FROM chunks k JOIN files f ON f.id = k.file_id
            WHERE k.id IN ({marks})""", ids).fetchall()
        return {int(r[0]): (r[1], r[2], r[3], int(r[4])) for r in rows}
