"""Text helpers: incremental UTF-8 decoding, stop-sequence matching, and prompt tokenization.

The streaming helpers work on the newest piece only, so the cost per generated token does not grow with
the output length (llama-cpp-python's high-level API re-decodes the whole completion for every token).
`tokenize_prompt` keeps control tokens to the template's own text: message contents stay plain text.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from typing import Protocol


class Utf8Stream:
    """Turns token bytes into text, holding back an incomplete multi-byte character until it completes."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, data: bytes) -> str:
        """The complete characters that `data` finishes."""
        return self._decoder.decode(data)

    def flush(self) -> str:
        """Whatever is left (an incomplete character becomes U+FFFD)."""
        return self._decoder.decode(b"", final=True)


class StopMatcher:
    """Finds stop sequences in streamed text without emitting any part of them.

    Text that could be the start of a stop sequence is held back until it either completes the
    sequence (generation stops, the sequence is not emitted) or cannot anymore (it is released).
    """

    def __init__(self, stops: tuple[str, ...] | list[str]) -> None:
        self.stops = tuple(s for s in stops if s)
        self._held = ""
        self.matched: str | None = None  # the stop sequence that was reached

    def feed(self, text: str) -> tuple[str, bool]:
        """Return (text safe to emit, whether a stop sequence was reached)."""
        if not self.stops:
            return text, False
        buf = self._held + text
        first = -1
        for stop in self.stops:
            i = buf.find(stop)
            if i != -1 and (first == -1 or i < first):
                first, self.matched = i, stop
        if first != -1:
            self._held = ""
            return buf[:first], True
        keep = self._partial_suffix(buf)
        self._held = buf[len(buf) - keep:] if keep else ""
        return buf[: len(buf) - keep], False

    def flush(self) -> str:
        """Release held-back text at the end of generation."""
        held, self._held = self._held, ""
        return held

    def _partial_suffix(self, buf: str) -> int:
        """Length of the longest end of `buf` that begins some stop sequence."""
        best = 0
        for stop in self.stops:
            for k in range(min(len(stop) - 1, len(buf)), best, -1):
                if buf.endswith(stop[:k]):
                    best = k
                    break
        return best


class _Tokenizer(Protocol):
    def tokenize(self, text: str, *, add_special: bool = True, parse_special: bool = True) -> list[int]: ...


def reads_special(model: _Tokenizer, text: str) -> bool:
    """True if `text` holds special-token text (`<|im_end|>` or the like): it tokenizes differently when parsed."""
    return (model.tokenize(text, add_special=False, parse_special=True)
            != model.tokenize(text, add_special=False, parse_special=False))


def tokenize_prompt(model: _Tokenizer, text: str, spans: list[tuple[int, int]], add_special: bool,
                    special: Callable[[str], bool] | None = None) -> list[int]:
    """Tokenize a rendered prompt so that only the template's own text can become control tokens.

    `spans` are where message contents (user text, tool results, documents) sit in `text`. A span for which
    `special` (default: `reads_special`) is true is tokenized as plain text, the rest as before, so prompts
    without such text are tokenized unchanged. The worker passes a cached `special`: fitting a conversation
    and its later turns ask about the same contents again and again.
    """
    special = special or (lambda span: reads_special(model, span))
    plain = [(a, b) for a, b in spans if special(text[a:b])]
    if not plain:
        return model.tokenize(text, add_special=add_special, parse_special=True)
    tokens: list[int] = []
    position = 0
    for a, b in plain:
        if a > position:
            tokens += model.tokenize(text[position:a], add_special=add_special and not tokens, parse_special=True)
        tokens += model.tokenize(text[a:b], add_special=add_special and not tokens, parse_special=False)
        position = b
    if position < len(text):
        tokens += model.tokenize(text[position:], add_special=False, parse_special=True)
    return tokens


def content_spans(text: str, contents: list[str]) -> list[tuple[int, int]]:
    """Where each of `contents` (in order) appears in `text`, as it is or stripped; missing ones are skipped."""
    spans = []
    cursor = 0
    for content in contents:
        for candidate in (content, content.strip()):
            if not candidate:
                continue
            found = text.find(candidate, cursor)
            if found >= 0:
                spans.append((found, found + len(candidate)))
                cursor = found + len(candidate)
                break
    return spans
