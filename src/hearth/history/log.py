"""`History`: record conversations, and list, show, search, fork and really delete them.

    history = History(path)                      # or open_history(settings) for the user's own database
    cid = history.start("run", [Entry("user", "Hi"), Entry("assistant", "Hello!", used, stats, "stop")])
    history.append(cid, [Entry("user", "More?"), Entry("assistant", "...", used, stats, "stop")])
    history.search("hello"); history.get(cid[:4]); history.delete([cid])

Every write is one transaction, so a conversation always holds whole turns. Conversation ids are 12 hex
digits (clients of the API may choose their own); anywhere an id is read, a unique prefix of 4 or more
characters works too, like git's short hashes. One `History` may be shared by threads: a lock serialises
its use of the one connection, and SQLite's own lock serialises writers across processes.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import re
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hearth.errors import ConflictError, HearthError, InvalidRequestError, NotFoundError, StoreError
from hearth.history.db import connect, erase_freed_space, transaction
from hearth.types import Message, Stats

MIN_PREFIX = 4
MAX_TITLE = 60
MARK_START, MARK_END = "\x02", "\x03"  # around matched words in search snippets
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_STATS = ("prompt_tokens", "cached_tokens", "completion_tokens", "load_ns", "prompt_ns", "eval_ns", "total_ns")
LIST_HINT = "`hearth history list` shows your conversations"


@dataclass(frozen=True)
class ModelUsed:
    """The exact model behind an answer: name, weights digest, chat template and options in effect."""

    name: str
    digest: str
    template: str | None
    parameters: dict[str, Any]


@dataclass(frozen=True)
class Entry:
    """A message to record; an answer also carries its model, statistics and finish reason."""

    role: str
    content: str
    used: ModelUsed | None = None
    stats: Stats | None = None
    finish_reason: str | None = None


@dataclass(frozen=True)
class StoredMessage:
    """A recorded message, numbered from 1 within its conversation."""

    position: int
    role: str
    content: str
    created_at: str
    model: str | None = None
    model_digest: str | None = None
    template_digest: str | None = None
    parameters: dict[str, Any] | None = None
    finish_reason: str | None = None
    stats: Stats | None = None

    def as_message(self) -> Message:
        """The plain role and content, as the service takes them."""
        return Message(self.role, self.content)


@dataclass(frozen=True)
class Summary:
    """One line of `hearth history list`."""

    id: str
    source: str
    created_at: str
    updated_at: str
    title: str
    message_count: int
    model: str | None
    parent_id: str | None = None
    parent_at: int | None = None


@dataclass(frozen=True)
class Conversation:
    """A conversation with all its messages and the chat templates its answers used."""

    summary: Summary
    messages: list[StoredMessage]
    templates: dict[str, str]

    @property
    def id(self) -> str:
        """The conversation id."""
        return self.summary.id


@dataclass(frozen=True)
class StoredResponse:
    """A stored Responses API answer: its conversation, where in it, its body and the items it continues."""

    id: str
    conversation_id: str
    position: int
    created_at: str
    body: dict[str, Any]
    items: list[dict[str, Any]]


@dataclass(frozen=True)
class Hit:
    """A message matching a search, with a snippet whose matches sit between MARK_START and MARK_END."""

    conversation_id: str
    position: int
    role: str
    snippet: str
    created_at: str
    model: str | None

    def highlighted(self, before: str = "", after: str = "") -> str:
        """The snippet with each match between `before` and `after` (default: plain text)."""
        return self.snippet.replace(MARK_START, before).replace(MARK_END, after)


def check_id(conversation_id: object) -> str:
    """`conversation_id` if it is a valid id a client may choose (1-64 letters, digits, '.', '_', '-')."""
    if not isinstance(conversation_id, str) or not _ID.fullmatch(conversation_id):
        raise InvalidRequestError("a conversation id is 1-64 letters, digits, '.', '_' or '-'",
                                  field="conversation_id")
    return conversation_id


def now_utc() -> datetime:
    """The current time in UTC (the default clock)."""
    return datetime.now(timezone.utc)


class History:
    """The conversations in one history database."""

    def __init__(self, path: Path, *, clock: Callable[[], datetime] = now_utc) -> None:
        self.path = path
        self.clock = clock
        self.erased_completely = True  # False when the last deletion could not empty the WAL file
        self._lock = threading.RLock()
        self._conn = connect(path)

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- recording -----------------------------------------------------------------------------------------

    def start(self, source: str, entries: Sequence[Entry] = (), *, conversation_id: str | None = None,
              parent_id: str | None = None) -> str:
        """Create a conversation (with `entries`, in the same transaction) and return its id.

        `parent_id` links it to the conversation it was made from (a replay of it, for instance).
        """
        with self._write() as conn:
            cid = self._insert_conversation(conn, source, conversation_id,
                                            parent=None if parent_id is None else (parent_id, None))
            self._insert(conn, cid, entries)
        return cid

    def append(self, conversation_id: str, entries: Sequence[Entry]) -> None:
        """Add `entries` to the end of a conversation, all or nothing."""
        with self._write() as conn:
            if not conn.execute("SELECT 1 FROM conversations WHERE id = ?", (conversation_id,)).fetchone():
                raise NotFoundError(f"conversation {conversation_id!r} not found", hint=LIST_HINT)
            self._insert(conn, conversation_id, entries)

    def record_exchange(self, conversation_id: str, messages: Sequence[Message], answer: Entry, *,
                        source: str = "api") -> str:
        """Record an API request that resends the whole conversation: store what is new, then the answer.

        Creates the conversation under the client's id if it does not exist. ConflictError if the stored
        messages are not a prefix of `messages` (the client changed the past: it should fork or use a new id).
        """
        check_id(conversation_id)
        with self._write() as conn:
            rows = conn.execute("SELECT role, content FROM messages WHERE conversation_id = ? ORDER BY position",
                                (conversation_id,)).fetchall()
            if not rows and not conn.execute("SELECT 1 FROM conversations WHERE id = ?",
                                             (conversation_id,)).fetchone():
                self._insert_conversation(conn, source, conversation_id)
            stored = [Message(role, content) for role, content in rows]
            if list(messages[:len(stored)]) != stored:
                raise ConflictError(f"conversation {conversation_id!r} already holds different messages",
                                    hint="send the whole conversation as recorded, or use a new conversation id")
            self._insert(conn, conversation_id, [Entry(m.role, m.content) for m in messages[len(stored):]]
                         + [answer])
        return conversation_id

    def fork(self, ref: str, at: int, *, source: str = "chat") -> str:
        """A new conversation holding copies of messages 1..`at` of `ref` (0: none, only the link); its id."""
        original = self.get(ref)
        count = len(original.messages)
        if not 0 <= at <= count:
            raise InvalidRequestError(f"conversation {original.id} has {count} messages; choose --at between 1 "
                                      f"and {count}", field="at")
        with self._write() as conn:
            cid = self._insert_conversation(conn, source, None, parent=(original.id, at))
            self._copy_messages(conn, original.id, cid, at)
        return cid

    @staticmethod
    def _copy_messages(conn: sqlite3.Connection, source: str, target: str, at: int) -> None:
        conn.execute(
            "INSERT INTO messages (conversation_id, position, role, content, created_at, model, model_digest,"
            " template_digest, parameters, finish_reason, " + ", ".join(_STATS) + ") "
            "SELECT ?, position, role, content, created_at, model, model_digest, template_digest, parameters,"
            " finish_reason, " + ", ".join(_STATS) + " FROM messages WHERE conversation_id = ? AND position <= ?",
            (target, source, at))

    def rename(self, ref: str, title: str) -> str:
        """Give a conversation its own title (an empty title goes back to its first question); its id."""
        title = " ".join(title.split())
        if len(title) > MAX_TITLE:
            raise InvalidRequestError(f"a title is at most {MAX_TITLE} characters", field="title")
        cid = self.resolve(ref)
        with self._write() as conn:
            conn.execute("UPDATE conversations SET title = ? WHERE id = ?", (title or None, cid))
        return cid

    def record_response(self, response_id: str, body: dict[str, Any], items: list[dict[str, Any]],
                        entries: Sequence[Entry], *, parent: StoredResponse | None = None,
                        source: str = "api") -> StoredResponse:
        """Record a Responses API exchange (its new messages and answer) and the response, all at once.

        Without `parent` it starts a conversation named after the response; after the parent's
        conversation's last message it continues it; after an earlier one it forks a new conversation
        there, so no recorded branch is ever rewritten. Returns the response as stored.
        """
        with self._write() as conn:
            if parent is None:
                cid = self._insert_conversation(conn, source, response_id)
            else:
                count = conn.execute("SELECT count(*) FROM messages WHERE conversation_id = ?",
                                     (parent.conversation_id,)).fetchone()[0]
                cid = parent.conversation_id
                if count != parent.position:
                    cid = self._insert_conversation(conn, source, None, parent=(cid, parent.position))
                    self._copy_messages(conn, parent.conversation_id, cid, parent.position)
            self._insert(conn, cid, entries)
            position = conn.execute("SELECT count(*) FROM messages WHERE conversation_id = ?", (cid,)).fetchone()[0]
            stored = StoredResponse(response_id, cid, int(position), _iso(self.clock()), body, items)
            conn.execute("INSERT INTO responses VALUES (?, ?, ?, ?, ?, ?)",
                         (stored.id, cid, stored.position, stored.created_at, json.dumps(stored.body),
                          json.dumps(stored.items)))
        return stored

    def get_response(self, response_id: str) -> StoredResponse:
        """A stored response by id (NotFoundError if there is none, or it was deleted)."""
        with self._read() as conn:
            row = conn.execute("SELECT id, conversation_id, position, created_at, body, items FROM responses "
                               "WHERE id = ?", (response_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"response {response_id[:80]!r} not found",
                                hint="responses are kept only when `store` is not false and history is on")
        return StoredResponse(row[0], row[1], row[2], row[3], json.loads(row[4]), json.loads(row[5]))

    def delete_response(self, response_id: str) -> None:
        """Forget a stored response (the conversation it is part of stays in the history)."""
        self.get_response(response_id)
        with self._write() as conn:
            conn.execute("DELETE FROM responses WHERE id = ?", (response_id,))

    # -- reading ---------------------------------------------------------------------------------------------

    def list(self, limit: int = 20, offset: int = 0) -> builtins.list[Summary]:
        """Conversations, most recently updated first."""
        with self._read() as conn:
            rows = conn.execute(_SUMMARY_SQL + " ORDER BY c.updated_at DESC, c.rowid DESC LIMIT ? OFFSET ?",
                                (limit, offset)).fetchall()
        return [_summary(row) for row in rows]

    def branches(self, ref: str) -> builtins.list[Summary]:
        """The conversations forked from `ref` (its other versions), oldest first."""
        cid = self.resolve(ref)
        with self._read() as conn:
            rows = conn.execute(_SUMMARY_SQL + " WHERE c.parent_id = ? ORDER BY c.created_at, c.rowid",
                                (cid,)).fetchall()
        return [_summary(row) for row in rows]

    def count(self) -> int:
        """How many conversations there are."""
        with self._read() as conn:
            return int(conn.execute("SELECT count(*) FROM conversations").fetchone()[0])

    def latest(self) -> str | None:
        """The id of the most recently updated conversation, if any."""
        found = self.list(limit=1)
        return found[0].id if found else None

    def resolve(self, ref: str) -> str:
        """The full id for `ref`: an id, or a unique prefix of at least 4 characters."""
        ref = ref.strip()
        with self._read() as conn:
            if conn.execute("SELECT 1 FROM conversations WHERE id = ?", (ref,)).fetchone():
                return ref
            matches = [] if len(ref) < MIN_PREFIX else [r[0] for r in conn.execute(
                "SELECT id FROM conversations WHERE substr(id, 1, ?) = ? LIMIT 5", (len(ref), ref))]
        if len(matches) == 1:
            return str(matches[0])
        if matches:
            raise InvalidRequestError(f"{ref!r} matches several conversations ({', '.join(matches)})",
                                      hint="type more characters of the id")
        raise NotFoundError(f"conversation {ref[:80]!r} not found", hint=LIST_HINT)

    def get(self, ref: str) -> Conversation:
        """A whole conversation by id or unique prefix."""
        cid = self.resolve(ref)
        with self._read() as conn:
            row = conn.execute(_SUMMARY_SQL + " WHERE c.id = ?", (cid,)).fetchone()
            if row is None:  # deleted between resolve and now
                raise NotFoundError(f"conversation {cid!r} not found", hint=LIST_HINT)
            messages = [_stored(r) for r in conn.execute(
                "SELECT position, role, content, created_at, model, model_digest, template_digest, parameters, "
                "finish_reason, " + ", ".join(_STATS) + " FROM messages WHERE conversation_id = ? ORDER BY position",
                (cid,))]
            digests = {m.template_digest for m in messages if m.template_digest}
            templates = {d: s for d, s in conn.execute(
                f"SELECT digest, source FROM templates WHERE digest IN ({','.join('?' * len(digests))})",
                tuple(digests))} if digests else {}
        return Conversation(_summary(row), messages, templates)

    def search(self, text: str, limit: int = 20) -> builtins.list[Hit]:
        """Messages containing every word of `text` (full-text, word stems match: "cats" finds "cat")."""
        query = fts_query(text)
        with self._read() as conn:
            rows = conn.execute(
                "SELECT m.conversation_id, m.position, m.role, "
                f"snippet(messages_fts, 0, '{MARK_START}', '{MARK_END}', '…', 16), m.created_at, m.model "
                "FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
                "WHERE messages_fts MATCH ? ORDER BY rank LIMIT ?", (query, limit)).fetchall()
        return [Hit(*row) for row in rows]

    # -- deleting ----------------------------------------------------------------------------------------------

    def delete(self, refs: Sequence[str]) -> int:
        """Delete conversations (by id or prefix) so their text cannot be recovered from the files."""
        ids = sorted({self.resolve(ref) for ref in refs})
        return self._delete("SELECT id FROM conversations WHERE id IN (" + ",".join("?" * len(ids)) + ")", ids)

    def delete_all(self) -> int:
        """Delete every conversation, unrecoverably."""
        return self._delete("SELECT id FROM conversations", [])

    def prune(self, days: int) -> int:
        """Delete conversations not updated for `days` days (0 deletes nothing)."""
        if days < 0:
            raise InvalidRequestError("history_days must be 0 (keep forever) or a number of days",
                                      field="history_days")
        if days == 0:
            return 0
        cutoff = _iso(self.clock() - timedelta(days=days))
        return self._delete("SELECT id FROM conversations WHERE updated_at < ?", [cutoff])

    def _delete(self, select: str, args: builtins.list[Any]) -> int:
        with self._write() as conn:
            ids = [row[0] for row in conn.execute(select, args)]
            for cid in ids:
                conn.execute("DELETE FROM responses WHERE conversation_id = ?", (cid,))
                conn.execute("DELETE FROM messages WHERE conversation_id = ?", (cid,))
                conn.execute("DELETE FROM conversations WHERE id = ?", (cid,))
            conn.execute("DELETE FROM templates WHERE digest NOT IN "
                         "(SELECT template_digest FROM messages WHERE template_digest IS NOT NULL)")
        if ids:
            with self._lock:
                self.erased_completely = self._guarded(lambda: erase_freed_space(self._conn))
        return len(ids)

    # -- internals ---------------------------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                with transaction(self._conn) as conn:
                    yield conn
            except sqlite3.Error as err:
                raise _store_error(self.path, err) from None

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._conn
            except sqlite3.Error as err:
                raise _store_error(self.path, err) from None

    def _guarded(self, action: Callable[[], bool]) -> bool:
        try:
            return action()
        except sqlite3.Error as err:
            raise _store_error(self.path, err) from None

    def _insert_conversation(self, conn: sqlite3.Connection, source: str, conversation_id: str | None,
                             parent: tuple[str, int | None] | None = None) -> str:
        cid = conversation_id or secrets.token_hex(6)
        stamp = _iso(self.clock())
        try:
            conn.execute("INSERT INTO conversations (id, source, parent_id, parent_at, created_at, updated_at) "
                         "VALUES (?, ?, ?, ?, ?, ?)", (cid, source, *(parent or (None, None)), stamp, stamp))
        except sqlite3.IntegrityError:
            raise ConflictError(f"a conversation with id {cid!r} already exists") from None
        return cid

    def _insert(self, conn: sqlite3.Connection, cid: str, entries: Sequence[Entry]) -> None:
        if not entries:
            return
        stamp = _iso(self.clock())
        position = conn.execute("SELECT coalesce(max(position), 0) FROM messages WHERE conversation_id = ?",
                                (cid,)).fetchone()[0]
        for entry in entries:
            position += 1
            used, stats = entry.used, entry.stats
            template_digest = None
            if used is not None and used.template is not None:
                template_digest = "sha256:" + hashlib.sha256(used.template.encode()).hexdigest()
                conn.execute("INSERT OR IGNORE INTO templates VALUES (?, ?)", (template_digest, used.template))
            conn.execute(
                "INSERT INTO messages (conversation_id, position, role, content, created_at, model, model_digest, "
                "template_digest, parameters, finish_reason, " + ", ".join(_STATS) + ") "
                "VALUES (" + ",".join("?" * (10 + len(_STATS))) + ")",
                (cid, position, entry.role, entry.content, stamp,
                 used.name if used else None, used.digest if used else None, template_digest,
                 json.dumps(used.parameters, sort_keys=True) if used else None, entry.finish_reason,
                 *(getattr(stats, name) if stats else None for name in _STATS)))
        conn.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (stamp, cid))


_SUMMARY_SQL = """
    SELECT c.id, c.source, c.created_at, c.updated_at,
        coalesce(c.title, (SELECT substr(content, 1, 200) FROM messages m
            WHERE m.conversation_id = c.id AND m.role = 'user' ORDER BY position LIMIT 1)),
        (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id),
        (SELECT model FROM messages m WHERE m.conversation_id = c.id AND m.model IS NOT NULL
            ORDER BY position DESC LIMIT 1),
        c.parent_id, c.parent_at
    FROM conversations c"""


def _summary(row: tuple[Any, ...]) -> Summary:
    cid, source, created, updated, first, count, model, parent_id, parent_at = row
    title = (first or "").strip().splitlines()[0] if (first or "").strip() else ""
    return Summary(cid, source, created, updated, title[:MAX_TITLE], count, model, parent_id, parent_at)


def _stored(row: tuple[Any, ...]) -> StoredMessage:
    position, role, content, created, model, digest, template, parameters, reason, *numbers = row
    stats = None if all(n is None for n in numbers) else Stats(*(n or 0 for n in numbers))
    return StoredMessage(position, role, content, created, model, digest, template,
                         json.loads(parameters) if parameters else None, reason, stats)


def fts_query(text: str) -> str:
    """A safe FTS5 query requiring every word of `text` (a trailing * on a word matches its prefix)."""
    terms = re.findall(r"(\w+)(\*?)", text)
    if not terms:
        raise InvalidRequestError("search needs at least one word", hint='e.g. hearth history search "bread"')
    return " ".join(f'"{word}"{star}' for word, star in terms[:64])


def stats_dict(stats: Stats | None) -> dict[str, int] | None:
    """Token counts and timings as a plain dict (for JSON)."""
    return None if stats is None else asdict(stats)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def _store_error(path: Path, err: sqlite3.Error) -> HearthError:
    if getattr(err, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return StoreError(f"the history database is busy ({err})", hint="try again in a moment")
    return StoreError(f"the history database {path} could not be used: {err}",
                      hint="check the disk has free space; `hearth history rm --all` starts afresh")
