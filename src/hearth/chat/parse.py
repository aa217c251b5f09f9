"""Splitting a model's streamed output into answer text, thinking, and tool calls.

Models mark these up in-band: reasoning models wrap their thinking in `<think>…</think>`; tool calls come as
Hermes/Qwen `<tool_call>{json}</tool_call>`, Mistral `[TOOL_CALLS][{json}, …]` (or the newer
`[TOOL_CALLS]name[ARGS]{json}`), or Llama 3 `<|python_tag|>{json}` / a bare `{"name": …, "parameters": …}`
answer. `OutputParser` is fed text as it streams and returns typed events; any text that might be the
beginning of a marker is held back until it is clearly not one, so markup never leaks into the answer,
whatever the chunk boundaries.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from hearth.types import Event, TextChunk, ThinkingChunk, ToolCall, ToolCallEvent

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
FORMATS = ("hermes", "mistral", "llama3")
_OPENERS = {"hermes": "<tool_call>", "mistral": "[TOOL_CALLS]", "llama3": "<|python_tag|>"}
_HERMES_CLOSE = "</tool_call>"


def detect_format(template_source: str | None) -> str:
    """The tool-call format a chat template teaches its model (Hermes-style when it says nothing)."""
    src = template_source or ""
    if "[TOOL_CALLS]" in src:
        return "mistral"
    if "<|python_tag|>" in src or "ipython" in src:
        return "llama3"
    return "hermes"


def new_call_id() -> str:
    """An id for a tool call, in OpenAI's style."""
    return "call_" + secrets.token_hex(12)


def parse_call(data: Any) -> ToolCall | None:
    """A ToolCall from a decoded `{"name": …, "arguments"|"parameters": {…}}`, or None."""
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None
    args = data.get("arguments", data.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except ValueError:
            return None
    if not isinstance(args, dict):
        return None
    return ToolCall(data["name"], args, new_call_id())


class OutputParser:
    """A streaming splitter of answer text, thinking and tool calls."""

    def __init__(self, fmt: str = "hermes", *, tools: bool = False, thinking: bool = True,
                 in_thinking: bool = False, forced: bool = False) -> None:
        """`forced`: the whole output is one grammar-constrained JSON call (tool_choice required/named)."""
        self.fmt = fmt if fmt in FORMATS else "hermes"
        self.tools = tools
        self.thinking = thinking
        self._state = "bare" if forced else "think" if in_thinking else "text"
        self._buf = ""
        self._started = False  # any answer text emitted yet (for Llama 3's bare-JSON calls)
        self._after_think = False

    # -- public -------------------------------------------------------------------------------------------
    def feed(self, text: str) -> list[Event]:
        """Events for a new piece of output."""
        self._buf += text
        out: list[Event] = []
        while True:
            before = (self._state, len(self._buf))
            if self._state == "text":
                self._text(out)
            elif self._state == "think":
                self._think(out)
            else:
                self._tool(out, final=False)
            if (self._state, len(self._buf)) == before:
                return out

    def finish(self) -> list[Event]:
        """Events for whatever is left when generation ends."""
        out: list[Event] = []
        if self._state in ("tool", "bare"):
            self._tool(out, final=True)
        elif self._state == "think":
            if self._buf:
                out.append(ThinkingChunk(self._buf))
        else:
            self._emit_text(out, self._buf)
        self._buf = ""
        return out

    # -- states -------------------------------------------------------------------------------------------
    def _markers(self) -> list[str]:
        marks = [THINK_OPEN] if self.thinking else []
        if self.tools:
            marks.append(_OPENERS[self.fmt])
        return marks

    def _text(self, out: list[Event]) -> None:
        if self.tools and self.fmt == "llama3" and not self._started and self._buf.lstrip().startswith("{"):
            self._state = "bare"  # Llama 3 may answer with a bare JSON call: hold it to the end
            return
        index, marker = _earliest(self._buf, self._markers())
        if marker is None:
            keep = _partial_suffix(self._buf, self._markers())
            self._emit_text(out, self._buf[: len(self._buf) - keep])
            self._buf = self._buf[len(self._buf) - keep:]
            return
        self._emit_text(out, self._buf[:index])
        self._buf = self._buf[index + len(marker):]
        self._state = "think" if marker == THINK_OPEN else "tool"

    def _emit_text(self, out: list[Event], text: str) -> None:
        if self._after_think:  # the blank lines a model puts between its thinking and its answer
            text = text.lstrip()
            self._after_think = not text
        if text:
            self._started = self._started or bool(text.strip())
            out.append(TextChunk(text))

    def _think(self, out: list[Event]) -> None:
        index = self._buf.find(THINK_CLOSE)
        if index == -1:
            keep = _partial_suffix(self._buf, [THINK_CLOSE])
            if len(self._buf) > keep:
                out.append(ThinkingChunk(self._buf[: len(self._buf) - keep]))
            self._buf = self._buf[len(self._buf) - keep:]
            return
        if index:
            out.append(ThinkingChunk(self._buf[:index]))
        self._buf = self._buf[index + len(THINK_CLOSE):]
        self._after_think = True
        self._state = "text"

    def _tool(self, out: list[Event], *, final: bool) -> None:
        if self._state == "bare":
            if final:
                self._bare_call(out)
            return
        if self.fmt == "hermes":
            index = self._buf.find(_HERMES_CLOSE)
            if index == -1 and not final:
                return
            body = self._buf if index == -1 else self._buf[:index]
            self._buf = "" if index == -1 else self._buf[index + len(_HERMES_CLOSE):]
            self._calls(out, body)
            self._state = "text"
            return
        if final:
            body, self._buf = self._buf, ""
            self._calls(out, body)

    def _calls(self, out: list[Event], body: str) -> None:
        calls = _decode_calls(body.strip(), self.fmt)
        if calls:
            out.extend(ToolCallEvent(c) for c in calls)
        elif body.strip():
            out.append(TextChunk(body.strip()))  # malformed: show what the model wrote, without markup
            self._started = True

    def _bare_call(self, out: list[Event]) -> None:
        text, self._buf = self._buf, ""
        calls = _decode_calls(text.strip(), "llama3")
        if calls:
            out.extend(ToolCallEvent(c) for c in calls)
        elif text:
            out.append(TextChunk(text.lstrip()))


def _decode_calls(body: str, fmt: str) -> list[ToolCall]:
    if fmt == "mistral" and "[ARGS]" in body:  # [TOOL_CALLS]name[ARGS]{...}
        calls = []
        for part in body.split("[TOOL_CALLS]"):
            name, sep, args = part.partition("[ARGS]")
            if sep:
                call = parse_call({"name": name.strip(), "arguments": args.strip()})
                if call:
                    calls.append(call)
        return calls
    try:
        data = json.loads(body)
    except ValueError:
        data = _first_json(body)
    items = data if isinstance(data, list) else [data]
    calls = [c for c in (parse_call(item) for item in items) if c is not None]
    return calls if len(calls) == len(items) else []


def _first_json(text: str) -> Any:
    try:
        value, _ = json.JSONDecoder().raw_decode(text)
    except ValueError:
        return None
    return value


def _earliest(buf: str, markers: list[str]) -> tuple[int, str | None]:
    best, which = -1, None
    for m in markers:
        i = buf.find(m)
        if i != -1 and (best == -1 or i < best):
            best, which = i, m
    return best, which


def _partial_suffix(buf: str, markers: list[str]) -> int:
    best = 0
    for m in markers:
        for k in range(min(len(m) - 1, len(buf)), best, -1):
            if buf.endswith(m[:k]):
                best = k
                break
    return best
