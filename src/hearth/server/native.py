"""The one native request both protocols convert into, and helpers the two converters share."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from hearth.errors import InvalidRequestError
from hearth.options import Options, parse_options
from hearth.service import Conversations, Turn, json_grammar, schema_grammar
from hearth.types import Message

ROLES = frozenset({"system", "user", "assistant", "tool"})
MAX_EMBED_INPUTS = 2048


@dataclass
class NativeRequest:
    """A generation request in Hearth's own terms (Ollama option names)."""

    model: str
    messages: list[Message] | None = None
    prompt: str | None = None
    options: Options = field(default_factory=Options)  # only the fields the client gave count as given
    stream: bool = False
    raw: bool = False
    system: str | None = None
    keep_alive: float | None = None
    include_usage: bool = False
    turn: Turn | None = None  # tools, tool choice, thinking
    conversation_id: str | None = None  # record the exchange in the history under this id
    documents: str | None = None  # answer from this document collection, citing it (docs/api.md)


def conversation_id(extra: dict[str, Any] | None) -> str | None:
    """The client's `conversation_id` (a Hearth extension to both chat APIs), checked before generating."""
    value = (extra or {}).get("conversation_id")
    return None if value is None else Conversations.check_id(value)


def documents_field(extra: dict[str, Any] | None) -> str | None:
    """The client's `documents` collection name (a Hearth extension to both chat APIs), if any."""
    value = (extra or {}).get("documents")
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidRequestError("documents must be the name of a document collection", field="documents")
    return value


def request_options(raw: dict[str, Any], names: dict[str, str] | None = None, *,
                    grammar: str | None = None) -> Options:
    """Parse a request's options once (400 before any model loads, naming the caller's own field)."""
    options = parse_options(raw, names=names)
    return options if grammar is None else options.with_(grammar=grammar)


def ndjson(obj: dict[str, Any]) -> bytes:
    """One line of an NDJSON stream (Ollama's streaming format)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def format_grammar(value: Any, field_name: str) -> str | None:
    """A grammar for Ollama's `format` ("json" or a JSON schema); None for no constraint."""
    if value is None or value == "":
        return None
    if value == "json":
        return json_grammar()
    if isinstance(value, dict):
        return schema_grammar(value, field=field_name)
    raise InvalidRequestError('format must be "json" or a JSON schema object', field=field_name)


def require_text(value: str, field_name: str, limit: int = 16 << 20) -> str:
    """`value`, refused if it holds NUL bytes or is absurdly long."""
    if "\x00" in value:
        raise InvalidRequestError("text must not contain NUL characters", field=field_name)
    if len(value) > limit:
        raise InvalidRequestError("the text is too long", field=field_name)
    return value


def message(role: str, content: str, index: int, field_prefix: str = "messages") -> Message:
    """A checked native message."""
    if role not in ROLES:
        raise InvalidRequestError(
            f"unknown role {role[:32]!r}: use system, user, assistant or tool", field=f"{field_prefix}[{index}].role")
    return Message(role, require_text(content, f"{field_prefix}[{index}].content"))


def embed_inputs(value: Any, field_name: str) -> list[str]:
    """A list of texts from `input` (a string or a list of strings)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise InvalidRequestError("input must be a string or a list of strings (token arrays are not supported)",
                                  field=field_name)
    if not items:
        raise InvalidRequestError("input must not be empty", field=field_name)
    if len(items) > MAX_EMBED_INPUTS:
        raise InvalidRequestError(f"at most {MAX_EMBED_INPUTS} inputs per request", field=field_name)
    return [require_text(i, field_name) for i in items]


def normalized(vector: list[float]) -> list[float]:
    """`vector` scaled to unit length (Ollama's /api/embed and OpenAI both return unit vectors)."""
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm > 0 else list(vector)


def iso_now() -> str:
    """The current UTC time in RFC 3339, as Ollama writes `created_at`."""
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def iso_in(seconds: float) -> str:
    """RFC 3339 time `seconds` from now (capped far in the future)."""
    seconds = min(max(seconds, 0.0), 100 * 365 * 86400.0)
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def human_count(n: int) -> str:
    """Parameter counts as Ollama shows them: 134.52M, 8.0B."""
    if n >= 1_000_000_000:
        return f"{n / 1e9:.1f}B"
    if n >= 1_000_000:
        return f"{n / 1e6:.2f}M"
    return f"{n / 1e3:.2f}K" if n >= 1000 else str(n)
