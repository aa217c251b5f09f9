"""The one native request both protocols convert into, and helpers the two converters share."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from hearth.engine.grammar import json_grammar, schema_grammar
from hearth.errors import InvalidOptionError, InvalidRequestError
from hearth.options import parse_options
from hearth.service import Turn
from hearth.types import Message, ToolCall

ROLES = frozenset({"system", "user", "assistant", "tool"})
MAX_EMBED_INPUTS = 2048


@dataclass
class NativeRequest:
    """A generation request in Hearth's own terms (Ollama option names)."""

    model: str
    messages: list[Message] | None = None
    prompt: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    stream: bool = False
    raw: bool = False
    system: str | None = None
    keep_alive: float | None = None
    include_usage: bool = False
    turn: Turn | None = None  # tools, tool choice, thinking
    decorate: Callable[[dict[str, Any], list[ToolCall], str], None] | None = None  # adds them to a whole answer
    conversation_id: str | None = None  # record the exchange in the history under this id


def conversation_id(extra: dict[str, Any] | None) -> str | None:
    """The client's `conversation_id` (a Hearth extension to both chat APIs), checked."""
    value = (extra or {}).get("conversation_id")
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= 128 or not all(c.isalnum() or c in "-_.:" for c in value):
        raise InvalidRequestError("conversation_id must be 1-128 letters, digits, '-', '_', '.' or ':'",
                                  field="conversation_id")
    return value


def check_options(options: dict[str, Any], names: dict[str, str] | None = None) -> dict[str, Any]:
    """Validate options now (400 before any model loads), reporting the caller's own field names."""
    try:
        parse_options(options)
    except InvalidOptionError as err:
        outside = {native: theirs for theirs, native in (names or {}).items()}
        field_name = outside.get(err.field or "", err.field)
        message = err.message.replace(f"'{err.field}'", f"'{field_name}'") if field_name != err.field else err.message
        raise InvalidOptionError(message, hint=err.hint, field=field_name) from None
    return options


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
