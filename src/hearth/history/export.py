"""Conversations as Markdown (to read or share) and JSON (to process, with every recorded detail)."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from typing import Any

from hearth.history.log import Conversation, StoredMessage
from hearth.types import Stats

_FENCE = re.compile(r"^ {0,3}(```|~~~)", re.MULTILINE)


def to_json(conversation: Conversation) -> str:
    """The conversation with models, digests, templates, options, token counts and timings, as JSON."""
    data: dict[str, Any] = asdict(conversation.summary)
    data["messages"] = [_message_dict(m) for m in conversation.messages]
    data["templates"] = conversation.templates
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def to_markdown(conversation: Conversation) -> str:
    """The conversation as a Markdown document: a heading per message, its model and statistics below."""
    s = conversation.summary
    lines = [f"# {s.title or 'Conversation'}", "", f"- Conversation: `{s.id}` ({s.source})",
             f"- Started: {s.created_at}", f"- Updated: {s.updated_at}"]
    if s.parent_id:
        lines.append(f"- Forked from `{s.parent_id}` at message {s.parent_at}")
    models = {(m.model, m.model_digest) for m in conversation.messages if m.model}
    for name, digest in sorted(models, key=lambda pair: (pair[0] or "", pair[1] or "")):
        lines.append(f"- Model: {name} (`{digest}`)")
    for message in conversation.messages:
        heading = f"## {message.position}. {message.role.capitalize()}"
        if message.model:
            heading += f" · {message.model}"
        lines += ["", heading, "", _closed_fences(message.content.strip())]
        if message.stats is not None:
            lines += ["", f"*{_stats_line(message.stats, message.finish_reason)}*"]
    return "\n".join(lines) + "\n"


def _message_dict(message: StoredMessage) -> dict[str, Any]:
    data = asdict(message)
    data["stats"] = None if message.stats is None else asdict(message.stats)
    return data


def _closed_fences(text: str) -> str:
    """Close a code fence the message left open, so it cannot swallow the rest of the document."""
    fences = _FENCE.findall(text)
    return text + f"\n{fences[-1]}" if len(fences) % 2 else text


def _stats_line(stats: Stats, reason: str | None) -> str:
    parts = [f"{stats.prompt_tokens} prompt tokens", f"{stats.completion_tokens} answer tokens"]
    if stats.eval_rate:
        parts.append(f"{stats.eval_rate:.1f} tokens/s")
    if reason and reason != "stop":
        parts.append(f"ended: {reason}")
    return ", ".join(parts)
