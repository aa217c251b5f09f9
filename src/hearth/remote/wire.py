"""Requests to a remote engine and its answers, as pure conversions (no I/O here).

Hearth's typed chat request (messages, `Options` the caller gave, tools, tool choice, thinking, a grammar
made from a JSON schema) becomes an OpenAI `/v1/chat/completions` or Ollama `/api/chat` body; the remote's
streamed chunks (server-sent events or NDJSON lines) become Hearth's events. Only options the caller set
are sent: a remote model has its own defaults.

Structured output is passed through as the schema itself (`response_format` / `format`), found from the
grammar Hearth made of it (`hearth.engine.grammar.grammar_source`). A grammar written by hand (GBNF) goes
only to servers that take GBNF (Hearth's Ollama API, llama-server's OpenAI API); elsewhere it is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hearth.engine.grammar import grammar_source
from hearth.errors import InvalidRequestError
from hearth.options import Options
from hearth.remote.registry import Remote
from hearth.types import Done, Event, Message, Stats, TextChunk, ThinkingChunk, ToolCall, ToolCallEvent

OPENAI_PATH, OLLAMA_PATH = "/v1/chat/completions", "/api/chat"
_OPENAI_SAMPLING = {"temperature": "temperature", "top_p": "top_p", "seed": "seed", "stop": "stop",
                    "presence_penalty": "presence_penalty", "frequency_penalty": "frequency_penalty"}
_LLAMA_EXTRAS = {"top_k": "top_k", "min_p": "min_p", "repeat_penalty": "repeat_penalty",
                 "typical_p": "typical_p", "repeat_last_n": "repeat_last_n"}  # llama-server's and Hearth's own
GBNF_SERVERS = {"openai": {"llama-server"}, "ollama": {"hearth"}}


@dataclass(frozen=True)
class Request:
    """What to send: the path under the remote's URL and the JSON body."""

    path: str
    body: dict[str, Any]


def chat_request(remote: Remote, messages: list[Message], options: Options, *, tools: list[dict[str, Any]],
                 tool_choice: str | None, think: bool | None) -> Request:
    """The streaming chat request for `remote`'s API."""
    if remote.api == "ollama":
        if tools and tool_choice not in (None, "auto"):
            raise InvalidRequestError(
                f"the remote model {remote.name} is reached through Ollama's API, which cannot force a tool call",
                hint="register it with --api openai to use tool_choice", field="tool_choice")
        return Request(OLLAMA_PATH, _ollama_body(remote, messages, options, tools, think))
    return Request(OPENAI_PATH, _openai_body(remote, messages, options, tools, tool_choice))


def _openai_body(remote: Remote, messages: list[Message], options: Options, tools: list[dict[str, Any]],
                 tool_choice: str | None) -> dict[str, Any]:
    given = options.requested()
    body: dict[str, Any] = {"model": remote.model, "messages": [_openai_message(m) for m in messages],
                            "stream": True, "stream_options": {"include_usage": True}}
    names = {**_OPENAI_SAMPLING, **(_LLAMA_EXTRAS if remote.server in ("hearth", "llama-server") else {})}
    for name, wire in names.items():
        if name in given:
            body[wire] = list(given[name]) if name == "stop" else given[name]
    if options.num_predict > 0 and "num_predict" in options.given:
        body["max_tokens"] = options.num_predict
    if tools:
        body["tools"] = tools
        if tool_choice and tool_choice != "auto":
            body["tool_choice"] = tool_choice if tool_choice in ("none", "required") else {
                "type": "function", "function": {"name": tool_choice}}
    source = grammar_source(options.grammar)
    if isinstance(source, dict):
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": "answer", "schema": source}}
    elif source == "json":
        body["response_format"] = {"type": "json_object"}
    elif options.grammar is not None:
        body["grammar"] = _gbnf(remote, options.grammar)
    return body


def _ollama_body(remote: Remote, messages: list[Message], options: Options, tools: list[dict[str, Any]],
                 think: bool | None) -> dict[str, Any]:
    given = {k: list(v) if isinstance(v, tuple) else v for k, v in options.requested().items() if k != "grammar"}
    body: dict[str, Any] = {"model": remote.model, "messages": [_ollama_message(m) for m in messages],
                            "stream": True}
    source = grammar_source(options.grammar)
    if source is not None:
        body["format"] = source
    elif options.grammar is not None:
        given["grammar"] = _gbnf(remote, options.grammar)
    if given:
        body["options"] = given
    if tools:
        body["tools"] = tools
    if think is not None:
        body["think"] = think
    return body


def _gbnf(remote: Remote, grammar: str) -> str:
    if remote.server not in GBNF_SERVERS[remote.api]:
        raise InvalidRequestError(
            f"the remote model {remote.name} ({remote.where}) cannot take a hand-written grammar",
            hint="ask for JSON or a JSON schema instead (format / response_format), which is passed through",
            field="grammar")
    return grammar


def _openai_message(m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        out["tool_calls"] = [{"id": c.id or f"call_{i}", "type": "function",
                              "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
                             for i, c in enumerate(m.tool_calls)]
    if m.role == "tool":
        out["tool_call_id"] = m.tool_call_id or ""
    return out


def _ollama_message(m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        out["tool_calls"] = [{"function": {"name": c.name, "arguments": c.arguments}} for c in m.tool_calls]
    if m.role == "tool" and m.name:
        out["tool_name"] = m.name
    if m.thinking:
        out["thinking"] = m.thinking
    return out


# -- answers -------------------------------------------------------------------------------------------------
@dataclass
class Reader:
    """Turns a remote's stream, one parsed JSON object at a time, into Hearth events."""

    api: str
    stats: Stats = field(default_factory=Stats)
    calls: dict[int, dict[str, str]] = field(default_factory=dict)  # OpenAI tool calls, built up by index
    finish: str | None = None
    ended: bool = False

    def read(self, chunk: dict[str, Any]) -> list[Event]:
        """The events in one chunk (a Done once the remote says it has finished)."""
        if "error" in chunk:
            self.ended = True
            return [Done("error", self.stats, error=_error_text(chunk["error"]))]
        return self._ollama(chunk) if self.api == "ollama" else self._openai(chunk)

    def end(self) -> list[Event]:
        """The closing events once the stream is over (OpenAI's `[DONE]`, or the connection closing)."""
        if self.ended:
            return []
        self.ended = True
        out: list[Event] = [ToolCallEvent(call) for call in self._openai_calls()]
        if self.finish is None:
            return [*out, Done("error", self.stats, error="the remote engine closed the stream before finishing")]
        return [*out, Done("length" if self.finish == "length" else "stop", self.stats)]

    def _openai(self, chunk: dict[str, Any]) -> list[Event]:
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.stats.prompt_tokens = int(usage.get("prompt_tokens") or 0)
            self.stats.completion_tokens = int(usage.get("completion_tokens") or 0)
            details = usage.get("prompt_tokens_details") or {}
            self.stats.cached_tokens = int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0
        out: list[Event] = []
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            thinking = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(thinking, str) and thinking:
                out.append(ThinkingChunk(thinking))
            if isinstance(delta.get("content"), str) and delta["content"]:
                out.append(TextChunk(delta["content"]))
            for call in delta.get("tool_calls") or []:
                built = self.calls.setdefault(int(call.get("index", 0)), {"id": "", "name": "", "arguments": ""})
                fn = call.get("function") or {}
                built["id"] = call.get("id") or built["id"]
                built["name"] += fn.get("name") or ""
                built["arguments"] += fn.get("arguments") or ""
            if choice.get("finish_reason"):
                self.finish = str(choice["finish_reason"])
        return out

    def _openai_calls(self) -> list[ToolCall]:
        calls = []
        for _, built in sorted(self.calls.items()):
            try:
                arguments = json.loads(built["arguments"] or "{}")
            except ValueError:
                arguments = {"_raw": built["arguments"]}
            calls.append(ToolCall(built["name"], arguments if isinstance(arguments, dict) else {"value": arguments},
                                  built["id"]))
        return calls

    def _ollama(self, chunk: dict[str, Any]) -> list[Event]:
        out: list[Event] = []
        message = chunk.get("message") or {}
        if isinstance(message.get("thinking"), str) and message["thinking"]:
            out.append(ThinkingChunk(message["thinking"]))
        if isinstance(message.get("content"), str) and message["content"]:
            out.append(TextChunk(message["content"]))
        for call in message.get("tool_calls") or []:
            fn = call.get("function") or {}
            arguments = fn.get("arguments")
            out.append(ToolCallEvent(ToolCall(str(fn.get("name", "")), arguments if isinstance(arguments, dict)
                                              else {}, str(call.get("id") or ""))))
        if chunk.get("done"):
            self.ended = True
            s = self.stats
            s.prompt_tokens = int(chunk.get("prompt_eval_count") or 0)
            s.completion_tokens = int(chunk.get("eval_count") or 0)
            reason = "length" if chunk.get("done_reason") == "length" else "stop"
            out.append(Done(reason, s))
        return out


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        error = error.get("message") or error
    return str(error)[:500]


def error_message(body: bytes) -> str:
    """The error sentence in a remote's error body (OpenAI's or Ollama's shape), or its start."""
    try:
        data = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace").strip()
    if isinstance(data, dict) and "error" in data:
        return _error_text(data["error"])
    return body[:200].decode("utf-8", "replace").strip()


def offered_models(api: str, data: Any) -> list[str]:
    """Model ids in a `/v1/models` or `/api/tags` answer."""
    if not isinstance(data, dict):
        return []
    items = data.get("models") if api == "ollama" else data.get("data")
    key = "name" if api == "ollama" else "id"
    return [str(m[key]) for m in items or [] if isinstance(m, dict) and m.get(key)]
