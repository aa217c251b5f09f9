"""Anthropic's Messages API as pure conversions: request bodies → `NativeRequest`, answers → messages.

Requests: `system` (a string or text blocks), `messages` whose content is a string or blocks (`text`;
`tool_use` on assistant turns; `tool_result` on user turns; `thinking` blocks are accepted and dropped),
`max_tokens` (required), `temperature` (0-1), `top_p`, `top_k`, `stop_sequences`, `tools` (client tools
with an `input_schema`), `tool_choice` (`auto`, `any`, `tool` + `name`, `none`; `any` and `tool` are
enforced by a grammar), `thinking` (`enabled` / `disabled`), `metadata` (ignored). Images, documents and
server tools are refused with 400 naming the block or tool.

Answers are content blocks (`thinking`, `text`, `tool_use`) with `stop_reason` `end_turn`, `max_tokens`,
`stop_sequence` or `tool_use`, and `usage` where `cache_read_input_tokens` counts the prompt tokens
served from the prompt cache (`input_tokens` the rest). Streams are server-sent events with their
`event:` names: `message_start` and one `ping`, `content_block_start` / `_delta` (`text_delta`,
`thinking_delta`, `input_json_delta`) / `_stop`, `message_delta` (stop reason and the final usage),
`message_stop`; an error after the stream started is one `error` event.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from hearth.errors import InvalidRequestError
from hearth.server.native import NativeRequest, message, request_options, require_text
from hearth.server.schemas import AnthropicCountTokensRequest, AnthropicMessage, AnthropicMessagesRequest
from hearth.service import Turn, validate_tools
from hearth.types import Answer, Done, Message, ToolCall

# Anthropic name → Hearth (Ollama) option name
OPTION_NAMES = {"max_tokens": "num_predict", "temperature": "temperature", "top_p": "top_p", "top_k": "top_k",
                "stop_sequences": "stop"}
ROLES = ("user", "assistant")
UNSUPPORTED_BLOCKS = {"image": "images", "document": "documents", "search_result": "search results",
                      "container_upload": "file uploads"}


# -- requests ---------------------------------------------------------------------------------------------
def messages_request(body: AnthropicMessagesRequest) -> NativeRequest:
    """A Messages request in native terms (400 naming the field for what cannot be honoured)."""
    if body.max_tokens < 1:
        raise InvalidRequestError("max_tokens must be at least 1", field="max_tokens")
    if body.temperature is not None and not 0.0 <= body.temperature <= 1.0:
        raise InvalidRequestError("temperature must be between 0 and 1", field="temperature")
    raw = {OPTION_NAMES[k]: v for k in OPTION_NAMES if (v := getattr(body, k)) is not None}
    options = request_options(raw, OPTION_NAMES)
    return NativeRequest(body.model, messages=conversation(body.system, body.messages), options=options,
                         stream=bool(body.stream), turn=turn(body.tools, body.tool_choice, body.thinking))


def count_request(body: AnthropicCountTokensRequest) -> tuple[list[Message], Turn | None]:
    """The conversation and turn whose prompt `/v1/messages/count_tokens` measures."""
    return conversation(body.system, body.messages), turn(body.tools, body.tool_choice, body.thinking)


def conversation(system: str | list[dict[str, Any]] | None, messages: list[AnthropicMessage]) -> list[Message]:
    """Anthropic's system prompt and messages as native messages (tool results become `tool` messages)."""
    if not messages:
        raise InvalidRequestError("messages must not be empty", field="messages")
    out: list[Message] = []
    if system:
        text = system if isinstance(system, str) else _text_blocks(system, "system")
        out.append(Message("system", require_text(text, "system")))
    names: dict[str, str] = {}  # tool_use id → tool name, for the results that answer them
    for i, msg in enumerate(messages):
        if msg.role not in ROLES:
            raise InvalidRequestError(f"role must be user or assistant, not {msg.role[:32]!r}",
                                      field=f"messages[{i}].role")
        if isinstance(msg.content, str):
            out.append(message(msg.role, msg.content, i))
            continue
        out += _from_blocks(msg.role, msg.content, i, names)
    return out


def _from_blocks(role: str, blocks: list[dict[str, Any]], i: int, names: dict[str, str]) -> list[Message]:
    texts: list[str] = []
    calls: list[ToolCall] = []
    results: list[Message] = []
    for j, block in enumerate(blocks):
        where = f"messages[{i}].content[{j}]"
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind in ("thinking", "redacted_thinking"):
            continue  # earlier reasoning: not shown to the model again
        elif kind == "tool_use" and role == "assistant":
            calls.append(_tool_use(block, where))
            names[calls[-1].id] = calls[-1].name
        elif kind == "tool_result" and role == "user":
            call_id = block.get("tool_use_id")
            if not isinstance(call_id, str) or not call_id:
                raise InvalidRequestError("a tool_result needs its tool_use_id", field=f"{where}.tool_use_id")
            content = block.get("content", "")
            text = content if isinstance(content, str) else _text_blocks(content, f"{where}.content")
            results.append(Message("tool", require_text(text, f"{where}.content"), name=names.get(call_id),
                                   tool_call_id=call_id))
        elif isinstance(kind, str) and kind in UNSUPPORTED_BLOCKS:
            raise InvalidRequestError(f"{UNSUPPORTED_BLOCKS[kind]} are not supported (no vision model yet)",
                                      field=f"{where}.type")
        else:
            raise InvalidRequestError(f"a {str(kind)[:32]!r} block is not supported in a {role} message",
                                      field=f"{where}.type")
    text = require_text("\n".join(texts), f"messages[{i}].content")
    if role == "assistant":
        return [Message("assistant", text, tool_calls=tuple(calls))]
    return [*results, *([Message("user", text)] if texts or not results else [])]


def _tool_use(block: dict[str, Any], where: str) -> ToolCall:
    name, call_id, arguments = block.get("name"), block.get("id"), block.get("input", {})
    if not isinstance(name, str) or not name or not isinstance(call_id, str):
        raise InvalidRequestError("a tool_use block needs an id and a name", field=where)
    if not isinstance(arguments, dict):
        raise InvalidRequestError("tool_use input must be an object", field=f"{where}.input")
    return ToolCall(name, arguments, call_id)


def _text_blocks(blocks: Any, where: str) -> str:
    if not isinstance(blocks, list):
        raise InvalidRequestError("expected a string or a list of text blocks", field=where)
    texts = []
    for j, block in enumerate(blocks):
        if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
            kind = block.get("type") if isinstance(block, dict) else None
            raise InvalidRequestError(f"only text blocks are supported here, not {str(kind)[:32]!r}",
                                      field=f"{where}[{j}]")
        texts.append(block["text"])
    return "\n".join(texts)


def turn(tools: list[dict[str, Any]] | None, choice: dict[str, Any] | None,
         thinking: dict[str, Any] | None) -> Turn | None:
    """The Turn for Anthropic's `tools`, `tool_choice` and `thinking` (None when there is nothing to say)."""
    think = _thinking(thinking)
    kind = (choice or {}).get("type", "auto")
    if not tools:
        if kind not in ("auto", "none"):
            raise InvalidRequestError("tool_choice needs tools", field="tool_choice")
        return None if think is None else Turn(think=think)
    schemas = []
    for i, tool in enumerate(tools):
        if tool.get("type") not in (None, "custom"):
            raise InvalidRequestError(f"server tools ({str(tool.get('type'))[:40]!r}) are not supported; "
                                      "describe a client tool with name and input_schema", field=f"tools[{i}].type")
        schemas.append({"type": "function", "function": {
            "name": tool.get("name"), "description": tool.get("description", ""),
            "parameters": tool.get("input_schema", {"type": "object", "properties": {}})}})
    checked = validate_tools(schemas)
    if kind == "tool":
        name = (choice or {}).get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequestError("tool_choice of type tool needs a name", field="tool_choice.name")
        return Turn(tools=checked, tool_choice=name, think=think)
    mapped = {"auto": "auto", "any": "required", "none": "none"}.get(kind)
    if mapped is None:
        raise InvalidRequestError('tool_choice.type must be "auto", "any", "tool" or "none"',
                                  field="tool_choice.type")
    return Turn(tools=checked, tool_choice=mapped, think=think)


def _thinking(value: dict[str, Any] | None) -> bool | None:
    if value is None:
        return None
    kind = value.get("type")
    if kind in ("enabled", "adaptive"):
        return True
    if kind == "disabled":
        return False
    raise InvalidRequestError('thinking.type must be "enabled" or "disabled"', field="thinking.type")


# -- responses --------------------------------------------------------------------------------------------
def new_id() -> str:
    """A message id like Anthropic's."""
    return f"msg_{secrets.token_hex(12)}"


def usage(done: Done) -> dict[str, int]:
    """Token counts: `input_tokens` read afresh, `cache_read_input_tokens` served from the prompt cache."""
    s = done.stats
    return {"input_tokens": max(0, s.prompt_tokens - s.cached_tokens), "output_tokens": s.completion_tokens,
            "cache_read_input_tokens": s.cached_tokens, "cache_creation_input_tokens": 0}


def stop_reason(done: Done, called: bool) -> str:
    """Anthropic's stop reason for how the answer ended."""
    if called:
        return "tool_use"
    if done.reason == "length":
        return "max_tokens"
    return "stop_sequence" if done.stop_sequence else "end_turn"


def message_response(model: str, answer: Answer, mid: str) -> dict[str, Any]:
    """A whole `message` object."""
    content: list[dict[str, Any]] = []
    if answer.thinking:
        content.append({"type": "thinking", "thinking": answer.thinking, "signature": ""})
    if answer.text or not answer.calls:
        content.append({"type": "text", "text": answer.text})
    content += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in answer.calls]
    return {"id": mid, "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": stop_reason(answer.done, bool(answer.calls)), "stop_sequence": answer.done.stop_sequence,
            "usage": usage(answer.done)}


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps({'type': name, **data}, ensure_ascii=False)}\n\n".encode()


def error_event(message_text: str, kind: str = "api_error") -> bytes:
    """An in-band error for a stream that already started."""
    return _event("error", {"error": {"type": kind, "message": message_text}})


class MessageStream:
    """Encodes one streamed answer as Anthropic's server-sent events, opening a content block per kind."""

    media_type = "text/event-stream"

    def __init__(self, model: str, mid: str | None = None) -> None:
        self.model = model
        self.id = mid or new_id()
        self._started = False
        self._index = -1
        self._open: str | None = None  # the kind of the block being streamed
        self._called = False

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return _event("message_start", {"message": {
            "id": self.id, "type": "message", "role": "assistant", "model": self.model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 0, "output_tokens": 0}}}
        ) + _event("ping", {})

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return _event("content_block_stop", {"index": self._index})

    def _block(self, kind: str, block: dict[str, Any]) -> bytes:
        if self._open == kind:
            return b""
        out = self._close()
        self._index += 1
        self._open = kind
        return out + _event("content_block_start", {"index": self._index, "content_block": block})

    def text(self, text: str) -> bytes:
        """A `text_delta` (opening a text block first if needed)."""
        return (self._start() + self._block("text", {"type": "text", "text": ""})
                + _event("content_block_delta", {"index": self._index, "delta": {"type": "text_delta", "text": text}}))

    def thinking(self, text: str) -> bytes:
        """A `thinking_delta` (opening a thinking block first if needed)."""
        delta = {"type": "thinking_delta", "thinking": text}
        return (self._start() + self._block("thinking", {"type": "thinking", "thinking": "", "signature": ""})
                + _event("content_block_delta", {"index": self._index, "delta": delta}))

    def tool_call(self, call: ToolCall) -> bytes:
        """A whole `tool_use` block: start, its input as one `input_json_delta`, stop."""
        self._called = True
        out = self._start() + self._close()
        self._index += 1
        delta = {"type": "input_json_delta", "partial_json": json.dumps(call.arguments, ensure_ascii=False)}
        return (out + _event("content_block_start", {"index": self._index, "content_block": {
                    "type": "tool_use", "id": call.id, "name": call.name, "input": {}}})
                + _event("content_block_delta", {"index": self._index, "delta": delta})
                + _event("content_block_stop", {"index": self._index}))

    def end(self, done: Done) -> bytes:
        """The open block's stop, `message_delta` (stop reason, final usage) and `message_stop`."""
        delta = {"stop_reason": stop_reason(done, self._called), "stop_sequence": done.stop_sequence}
        return (self._start() + self._close() + _event("message_delta", {"delta": delta, "usage": usage(done)})
                + _event("message_stop", {}))

    def error(self, message_text: str, code: str | None) -> bytes:
        """An in-band `error` event ending the stream."""
        return error_event(message_text, "overloaded_error" if code == "worker_crashed" else "api_error")
