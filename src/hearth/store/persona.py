"""What `ModelStore.create` accepts for a persona: default parameters, seed messages and text fields."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hearth.errors import InvalidRequestError
from hearth.options import OPTION_NAMES, parse_options
from hearth.store.manifest import SEED_ROLES
from hearth.types import Message

MAX_TEXT = 256 << 10
MAX_SEED_MESSAGES = 1000


def checked_parameters(parameters: dict[str, Any] | None) -> dict[str, Any]:
    """Validate default parameters (Ollama option names) and return them as plain JSON values."""
    if not parameters:
        return {}
    options = parse_options(parameters)
    out: dict[str, Any] = {}
    for key in parameters:
        value = getattr(options, key, None) if key in OPTION_NAMES else None
        if value is not None:
            out[key] = list(value) if isinstance(value, tuple) else value
    return out


def checked_messages(messages: Sequence[Message] | None) -> tuple[Message, ...] | None:
    """Seed messages checked for role and size (None: keep the base model's)."""
    if messages is None:
        return None
    if len(messages) > MAX_SEED_MESSAGES:
        raise InvalidRequestError(f"at most {MAX_SEED_MESSAGES} seed messages are allowed", field="messages")
    for message in messages:
        if message.role not in SEED_ROLES:
            raise InvalidRequestError(f"a seed message has role {message.role!r}; use one of {', '.join(SEED_ROLES)}",
                                      field="messages")
        check_text("message", message.content)
    return tuple(Message(m.role, m.content) for m in messages)


def check_text(field: str, value: str | None) -> None:
    """A persona's text field (system prompt, template, license, a message): text, and not enormous."""
    if value is not None and (not isinstance(value, str) or len(value) > MAX_TEXT):
        raise InvalidRequestError(f"{field} must be text of at most {MAX_TEXT} characters", field=field)
