"""Plain data shared by every room: messages, generation events and statistics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "cancelled", "error"]


@dataclass(frozen=True)
class ToolCall:
    """A function the model asked to call, with its arguments (already parsed from JSON)."""

    name: str
    arguments: dict[str, Any]
    id: str = ""

    def to_template(self) -> dict[str, Any]:
        """The shape chat templates expect (Hugging Face's convention)."""
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass(frozen=True)
class Message:
    """One turn of a conversation (`tool_calls` on assistant turns; `name`/`tool_call_id` on tool results)."""

    role: str
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    name: str | None = None
    tool_call_id: str | None = None
    thinking: str | None = None

    def to_template(self) -> dict[str, Any]:
        """The message as chat templates receive it."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [c.to_template() for c in self.tool_calls]
        if self.name:
            out["name"] = self.name
        if self.tool_call_id:
            out["tool_call_id"] = self.tool_call_id
        return out


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
    draft_tokens: int = 0  # speculative decoding: tokens drafted and verified
    accepted_tokens: int = 0  # of which the model confirmed (part of completion_tokens)

    @property
    def prompt_rate(self) -> float:
        """Prompt tokens evaluated per second (cached tokens excluded)."""
        evaluated = self.prompt_tokens - self.cached_tokens
        return evaluated / (self.prompt_ns / 1e9) if self.prompt_ns > 0 else 0.0

    @property
    def eval_rate(self) -> float:
        """Generated tokens per second.

        `eval_ns` runs from the first generated token to the last, so it spans `completion_tokens - 1`
        decoding steps (the first token comes out of the prompt's evaluation).
        """
        steps = self.completion_tokens - 1
        return steps / (self.eval_ns / 1e9) if self.eval_ns > 0 and steps > 0 else 0.0


@dataclass(frozen=True)
class TextChunk:
    """A piece of generated text (whole UTF-8 characters only)."""

    text: str


@dataclass(frozen=True)
class ThinkingChunk:
    """A piece of a reasoning model's thinking, kept apart from the answer."""

    text: str


@dataclass(frozen=True)
class ToolCallEvent:
    """The model called a tool (complete: name and parsed arguments)."""

    call: ToolCall


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
    stop_sequence: str | None = None  # the stop sequence that ended the answer, if one did


Event = TextChunk | ThinkingChunk | ToolCallEvent | Notice | Done


@dataclass(frozen=True)
class Answer:
    """A finished generation: its text, thinking and tool calls, and how it ended."""

    text: str
    done: Done
    thinking: str = ""
    calls: tuple[ToolCall, ...] = ()


Sink = Callable[[Event], None]  # receives a generation's events (from another thread, for `Generation.start`)
