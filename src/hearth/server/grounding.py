"""Chat requests that name a document collection (`"documents": "NAME"`, a Hearth extension to both chat APIs).

The route's pipeline is unchanged: the service grounds the question (`Hearth.ground`) before the generation
starts, and the answer goes out through the protocol's own encoder with two differences: citations of numbers
that were not given are dropped as the text streams, and the sources (`"sources": [...]`, see docs/api.md)
ride on the final chunk, or on the whole response.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from hearth.server.streaming import Encoder
from hearth.service import Grounded
from hearth.types import Answer, Done, ToolCall

Whole = Callable[[str, Answer], dict[str, Any]]


class CitingEncoder:
    """Wraps a protocol's stream encoder: citations checked as text passes, the sources on the final chunk."""

    def __init__(self, inner: Any, grounded: Grounded) -> None:
        self.inner = inner
        self.grounded = grounded
        self.citations = grounded.citations()
        self.media_type = inner.media_type

    def text(self, text: str) -> bytes:
        """The text with invented citations dropped (a citation split across chunks waits for its end)."""
        shown = self.citations.feed(text)
        return self.inner.text(shown) if shown else b""

    def thinking(self, text: str) -> bytes:
        """Thinking, unchanged."""
        return bytes(self.inner.thinking(text))

    def tool_call(self, call: ToolCall) -> bytes:
        """A tool call, unchanged."""
        return bytes(self.inner.tool_call(call))

    def end(self, done: Done) -> bytes:
        """Whatever text was held back, then the final chunk carrying `sources`."""
        tail = self.citations.flush()
        out = self.inner.text(tail) if tail else b""
        cited = self.grounded.finished(self.citations, "")
        self.inner.final_extra = {"sources": cited.sources_json()}
        return bytes(out + self.inner.end(done))

    def error(self, message_text: str, code: str | None) -> bytes:
        """An in-band error, unchanged."""
        return bytes(self.inner.error(message_text, code))


def citing(encoder: Callable[[str], Encoder], grounded: Grounded) -> Callable[[str], Encoder]:
    """`encoder`, wrapped to check citations and send the sources."""
    return lambda model: CitingEncoder(encoder(model), grounded)


def with_sources(whole: Whole, grounded: Grounded) -> Whole:
    """`whole`, for an answer whose invented citations are dropped, with `sources` added."""
    def answer(model: str, raw: Answer) -> dict[str, Any]:
        cited = grounded.cite(raw.text)
        return {**whole(model, replace(raw, text=cited.text)), "sources": cited.sources_json()}
    return answer
