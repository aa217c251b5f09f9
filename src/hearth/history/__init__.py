"""History: every conversation, in one SQLite database under `HEARTH_HOME`, searchable and really deletable.

    from hearth.history import open_history, Entry
    history = open_history(settings)             # prunes conversations older than settings.history_days
    cid = history.start("chat", [Entry("user", "Hi"), Entry("assistant", "Hello!", used, stats, "stop")])
    history.search("hello"); to_markdown(history.get(cid)); history.delete([cid])

Rooms: `db` (connection, migrations, crash safety and real deletion), `log` (`History`: record, read,
search, fork, delete) and `export` (Markdown and JSON). Whether to record at all (the `history` setting)
is decided in `hearth.service.conversations`.
"""

from __future__ import annotations

from pathlib import Path

from hearth.config import Settings
from hearth.history.db import MIGRATIONS, default_path
from hearth.history.export import to_json, to_markdown
from hearth.history.log import (
    MARK_END,
    MARK_START,
    Conversation,
    Entry,
    History,
    Hit,
    ModelUsed,
    StoredMessage,
    StoredResponse,
    Summary,
    check_id,
)
from hearth.paths import hearth_home


def open_history(settings: Settings, home: Path | None = None) -> History:
    """The user's history database, after deleting what `settings.history_days` says is too old."""
    history = History(default_path(home or hearth_home()))
    try:
        history.prune(settings.history_days)
    except BaseException:
        history.close()
        raise
    return history


__all__ = [
    "MARK_END",
    "MARK_START",
    "MIGRATIONS",
    "Conversation",
    "Entry",
    "History",
    "Hit",
    "ModelUsed",
    "StoredMessage",
    "StoredResponse",
    "Summary",
    "check_id",
    "default_path",
    "open_history",
    "to_json",
    "to_markdown",
]
