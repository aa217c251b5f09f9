"""Plain data shared by every room: messages, generation events and statistics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "cancelled", "error"]


@dataclass(frozen=True)
class Message:
    """One turn of a conversation."""

    role: str
    content: str


@dataclass
class Stats:
    """Token counts and timings of one generation (nanoseconds, like Ollama's API)."""

    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    load_ns: int = 0
    prompt_ns: int = 0
    eval_ns: int = 0
    total_ns: int = 0

    @property
    def prompt_rate(self) -> float:
        """Prompt tokens evaluated per second (cached tokens excluded)."""
        evaluated = self.prompt_tokens - self.cached_tokens
        return evaluated / (self.prompt_ns / 1e9) if self.prompt_ns > 0 else 0.0

    @property
    def eval_rate(self) -> float:
        """Generated tokens per second."""
        return self.completion_tokens / (self.eval_ns / 1e9) if self.eval_ns > 0 else 0.0


@dataclass(frozen=True)
class TextChunk:
    """A piece of generated text (whole UTF-8 characters only)."""

    text: str


@dataclass(frozen=True)
class Notice:
    """A warning for the user that does not stop generation (e.g. history trimmed to fit)."""

    message: str


@dataclass(frozen=True)
class Done:
    """The last event of a generation."""

    reason: FinishReason
    stats: Stats = field(default_factory=Stats)
    error: str | None = None


Event = TextChunk | Notice | Done
