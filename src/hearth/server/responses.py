"""OpenAI's Responses API as pure conversions: request bodies and stored items → `NativeRequest`, answers →
response objects and their event stream.

Requests: `input` (a string, or items: messages with text parts, `function_call`, `function_call_output`;
`reasoning` items are accepted and dropped), `instructions`, `max_output_tokens`, `temperature`, `top_p`,
`tools` (function tools only; others are refused naming them), `tool_choice`, `text.format` (`json_object`
or `json_schema`, enforced by a grammar), `reasoning` (thinking on), `stream`, `store`,
`previous_response_id`. Items carry ids, so a stored response's input can be listed again.

Answers are `response` objects whose `output` holds a `reasoning` item (thinking), a `message` item with
`output_text`, and `function_call` items. Streams are server-sent events with sequence numbers:
`response.created`, `response.in_progress`, `response.output_item.added`, `response.content_part.added`,
`response.output_text.delta` / `.done` (and `response.reasoning_text.*`), `response.function_call_arguments
.delta` / `.done`, `response.content_part.done`, `response.output_item.done`, then `response.completed` (or
`response.incomplete` when `max_output_tokens` cut it short); a failure is `response.failed`.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from hearth.errors import InvalidRequestError
from hearth.server.native import NativeRequest, request_options, require_text
from hearth.server.schemas import ResponsesRequest
from hearth.service import Turn, json_grammar, new_call_id, schema_grammar, validate_tools
from hearth.types import Answer, Done, Message, ToolCall

OPTION_NAMES = {"max_output_tokens": "num_predict", "temperature": "temperature", "top_p": "top_p"}
TEXT_PARTS = ("input_text", "output_text", "text")
ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}


# -- requests ---------------------------------------------------------------------------------------------
def new_id(prefix: str = "resp") -> str:
    """An id like OpenAI's (`resp_…`, `msg_…`, `fc_…`)."""
    return f"{prefix}_{secrets.token_hex(12)}"


def input_items(value: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`input` as checked items, each with an id (a string is one user message)."""
    if isinstance(value, str):
        value = [{"type": "message", "role": "user", "content": value}]
    if not value:
        raise InvalidRequestError("input must not be empty", field="input")
    return [_item(item, f"input[{i}]") for i, item in enumerate(value)]


def _item(item: dict[str, Any], where: str) -> dict[str, Any]:
    kind = item.get("type", "message")
    if kind == "message":
        role = item.get("role")
        if role not in ROLES:
            raise InvalidRequestError("role must be user, assistant, system or developer", field=f"{where}.role")
        part = "output_text" if role == "assistant" else "input_text"
        return {"type": "message", "id": item.get("id") or new_id("msg"), "role": role,
                "content": [{"type": part, "text": _text(item.get("content"), f"{where}.content")}]}
    if kind == "function_call":
        name, call_id, arguments = item.get("name"), item.get("call_id"), item.get("arguments", "{}")
        if not isinstance(name, str) or not name or not isinstance(call_id, str) or not isinstance(arguments, str):
            raise InvalidRequestError("a function_call needs call_id, name and arguments (a JSON string)",
                                      field=where)
        _arguments(arguments, f"{where}.arguments")
        return {"type": "function_call", "id": item.get("id") or f"fc_{call_id}", "call_id": call_id, "name": name,
                "arguments": arguments, "status": "completed"}
    if kind == "function_call_output":
        call_id = item.get("call_id")
        if not isinstance(call_id, str) or not call_id:
            raise InvalidRequestError("a function_call_output needs its call_id", field=f"{where}.call_id")
        output = item.get("output", "")
        return {"type": "function_call_output", "id": item.get("id") or new_id("fco"), "call_id": call_id,
                "output": output if isinstance(output, str) else _text(output, f"{where}.output")}
    if kind == "reasoning":
        return {"type": "reasoning", "id": item.get("id") or new_id("rs"), "summary": []}
    raise InvalidRequestError(f"input items of type {str(kind)[:40]!r} are not supported", field=f"{where}.type")


def _text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return require_text(content, where)
    if not isinstance(content, list):
        raise InvalidRequestError("content must be a string or a list of text parts", field=where)
    texts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in TEXT_PARTS or not isinstance(part.get("text"), str):
            raise InvalidRequestError(f"only text parts are supported, not {str(kind)[:32]!r} (no vision model yet)",
                                      field=f"{where}[{j}].type")
        texts.append(part["text"])
    return require_text("\n".join(texts), where)


def _arguments(text: str, where: str) -> dict[str, Any]:
    try:
        value = json.loads(text) if text.strip() else {}
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise InvalidRequestError("arguments must be a JSON object", field=where)
    return value


def messages(items: list[dict[str, Any]], instructions: str | None = None) -> list[Message]:
    """Checked items (earlier ones first) as native messages; consecutive calls join one assistant turn."""
    out = [Message("system", require_text(instructions, "instructions"))] if instructions else []
    names: dict[str, str] = {}
    for item in items:
        kind = item["type"]
        if kind == "message":
            out.append(Message(ROLES[item["role"]], item["content"][0]["text"]))
        elif kind == "function_call":
            call = ToolCall(item["name"], _arguments(item["arguments"], "arguments"), item["call_id"])
            names[call.id] = call.name
            last = out[-1] if out else None
            if last is not None and last.role == "assistant" and (last.tool_calls or not last.content):
                out[-1] = Message("assistant", last.content, tool_calls=(*last.tool_calls, call))
            else:
                out.append(Message("assistant", "", tool_calls=(call,)))
        elif kind == "function_call_output":
            out.append(Message("tool", item["output"], name=names.get(item["call_id"]),
                               tool_call_id=item["call_id"]))
    if not out or out[-1].role == "assistant":
        raise InvalidRequestError("the input must end with a user message or a function_call_output",
                                  field="input")
    return out


def request(body: ResponsesRequest, items: list[dict[str, Any]]) -> NativeRequest:
    """A Responses request in native terms, over every item of the conversation so far."""
    if body.max_output_tokens is not None and body.max_output_tokens < 1:
        raise InvalidRequestError("max_output_tokens must be at least 1", field="max_output_tokens")
    if body.temperature is not None and not 0.0 <= body.temperature <= 2.0:
        raise InvalidRequestError("temperature must be between 0 and 2", field="temperature")
    raw = {OPTION_NAMES[k]: v for k in OPTION_NAMES if (v := getattr(body, k)) is not None}
    options = request_options(raw, OPTION_NAMES, grammar=_format_grammar(body.text))
    return NativeRequest(body.model, messages=messages(items, body.instructions), options=options,
                         stream=bool(body.stream), turn=_turn(body))


def _format_grammar(text: dict[str, Any] | None) -> str | None:
    fmt = (text or {}).get("format") or {"type": "text"}
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return json_grammar()
    if kind == "json_schema":
        schema = fmt.get("schema")
        if not isinstance(schema, dict):
            raise InvalidRequestError("text.format.schema is required", field="text.format.schema")
        return schema_grammar(schema, field="text.format.schema")
    raise InvalidRequestError("text.format.type must be text, json_object or json_schema", field="text.format.type")


def _turn(body: ResponsesRequest) -> Turn | None:
    effort = (body.reasoning or {}).get("effort")
    think = None if body.reasoning is None else effort not in ("none", "minimal")
    choice = body.tool_choice
    if isinstance(choice, dict):
        name = choice.get("name")
        if choice.get("type") != "function" or not isinstance(name, str) or not name:
            raise InvalidRequestError('tool_choice must be "auto", "none", "required" or {"type": "function", '
                                      '"name": ...}', field="tool_choice")
        choice = name
    elif choice not in (None, "auto", "none", "required"):
        raise InvalidRequestError('tool_choice must be "auto", "none", "required" or {"type": "function", '
                                  '"name": ...}', field="tool_choice")
    if not body.tools:
        if choice not in (None, "auto", "none"):
            raise InvalidRequestError("tool_choice needs tools", field="tool_choice")
        return None if think is None else Turn(think=think)
    schemas = []
    for i, tool in enumerate(body.tools):
        if tool.get("type") != "function":
            raise InvalidRequestError(f"only function tools are supported, not {str(tool.get('type'))[:40]!r}",
                                      field=f"tools[{i}].type")
        schemas.append({"type": "function", "function": {
            "name": tool.get("name"), "description": tool.get("description") or "",
            "parameters": tool.get("parameters") or {"type": "object", "properties": {}}}})
    return Turn(tools=validate_tools(schemas), tool_choice=choice or "auto", think=think)


# -- responses --------------------------------------------------------------------------------------------
def _suffix(rid: str) -> str:
    return rid.split("_", 1)[-1]


def output_items(rid: str, answer: Answer, status: str = "completed") -> list[dict[str, Any]]:
    """The answer as output items (ids derived from the response id, so a stream and its end agree)."""
    items: list[dict[str, Any]] = []
    if answer.thinking:
        items.append(_reasoning(rid, answer.thinking, status))
    if answer.text or not answer.calls:
        items.append(_message(rid, answer.text, status))
    items += [_call(call, status) for call in answer.calls]
    return items


def _reasoning(rid: str, text: str, status: str) -> dict[str, Any]:
    return {"type": "reasoning", "id": f"rs_{_suffix(rid)}", "summary": [], "status": status,
            "content": [{"type": "reasoning_text", "text": text}]}


def _message(rid: str, text: str, status: str) -> dict[str, Any]:
    return {"type": "message", "id": f"msg_{_suffix(rid)}", "status": status, "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]}


def _call(call: ToolCall, status: str) -> dict[str, Any]:
    return {"type": "function_call", "id": f"fc_{call.id or new_call_id()}", "call_id": call.id, "name": call.name,
            "arguments": json.dumps(call.arguments, ensure_ascii=False), "status": status}


def usage(done: Done) -> dict[str, Any]:
    """Token counts, with the prompt tokens served from the prompt cache."""
    s = done.stats
    return {"input_tokens": s.prompt_tokens, "input_tokens_details": {"cached_tokens": s.cached_tokens,
                                                                      "cache_write_tokens": 0},
            "output_tokens": s.completion_tokens, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": s.prompt_tokens + s.completion_tokens}


def response_object(rid: str, body: ResponsesRequest, model: str, created: int, answer: Answer | None,
                    status: str | None = None) -> dict[str, Any]:
    """A `response` object: in progress (no answer yet), completed, incomplete (cut short) or failed."""
    done = answer.done if answer is not None else None
    if status is None:
        status = "incomplete" if done is not None and done.reason == "length" else "completed"
    return {
        "id": rid, "object": "response", "created_at": created, "status": status, "model": model,
        "output": output_items(rid, answer) if answer is not None and status != "in_progress" else [],
        "error": None, "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": body.instructions, "max_output_tokens": body.max_output_tokens,
        "previous_response_id": body.previous_response_id, "temperature": body.temperature, "top_p": body.top_p,
        "tools": body.tools or [], "tool_choice": body.tool_choice or "auto",
        "parallel_tool_calls": body.parallel_tool_calls is not False, "text": body.text or {"format": {"type": "text"}},
        "reasoning": body.reasoning or {"effort": None, "summary": None}, "store": body.store is not False,
        "metadata": body.metadata or {}, "truncation": body.truncation or "disabled",
        "usage": usage(done) if done is not None else None,
    }


class ResponseStream:
    """Encodes one streamed answer as Responses API events, one output item per kind."""

    media_type = "text/event-stream"

    def __init__(self, rid: str, body: ResponsesRequest, model: str, created: int) -> None:
        self.rid, self.body, self.model, self.created = rid, body, model, created
        self._seq = 0
        self._started = False
        self._open: str | None = None  # "message" or "reasoning"
        self._index = -1
        self._text: list[str] = []
        self._thinking: list[str] = []
        self._calls: list[ToolCall] = []

    def _event(self, kind: str, **data: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self._seq, **data}
        self._seq += 1
        return f"event: {kind}\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        pending = response_object(self.rid, self.body, self.model, self.created, None, "in_progress")
        return (self._event("response.created", response=pending)
                + self._event("response.in_progress", response=pending))

    def _open_item(self, kind: str) -> bytes:
        if self._open == kind:
            return b""
        out = self._start() + self._close()
        self._open, self._index = kind, self._index + 1
        if kind == "message":
            item, part = _message(self.rid, "", "in_progress"), {"type": "output_text", "text": "", "annotations": []}
        else:
            item, part = _reasoning(self.rid, "", "in_progress"), {"type": "reasoning_text", "text": ""}
        item["content"] = []
        return (out + self._event("response.output_item.added", output_index=self._index, item=item)
                + self._event("response.content_part.added", item_id=item["id"], output_index=self._index,
                              content_index=0, part=part))

    def _close(self) -> bytes:
        kind, self._open = self._open, None
        if kind is None:
            return b""
        if kind == "message":
            item = _message(self.rid, "".join(self._text), "completed")
            done = self._event("response.output_text.done", item_id=item["id"], output_index=self._index,
                               content_index=0, text="".join(self._text), logprobs=[])
        else:
            item = _reasoning(self.rid, "".join(self._thinking), "completed")
            done = self._event("response.reasoning_text.done", item_id=item["id"], output_index=self._index,
                               content_index=0, text="".join(self._thinking))
        return (done + self._event("response.content_part.done", item_id=item["id"], output_index=self._index,
                                   content_index=0, part=item["content"][0])
                + self._event("response.output_item.done", output_index=self._index, item=item))

    def text(self, text: str) -> bytes:
        """An `output_text.delta` (opening the message item first if needed)."""
        out = self._open_item("message")
        self._text.append(text)
        return out + self._event("response.output_text.delta", item_id=f"msg_{_suffix(self.rid)}",
                                 output_index=self._index, content_index=0, delta=text, logprobs=[])

    def thinking(self, text: str) -> bytes:
        """A `reasoning_text.delta` (opening the reasoning item first if needed)."""
        out = self._open_item("reasoning")
        self._thinking.append(text)
        return out + self._event("response.reasoning_text.delta", item_id=f"rs_{_suffix(self.rid)}",
                                 output_index=self._index, content_index=0, delta=text)

    def tool_call(self, call: ToolCall) -> bytes:
        """A whole `function_call` item: added, its arguments, done."""
        out = self._start() + self._close()
        self._calls.append(call)
        self._index += 1
        item = _call(call, "completed")
        return (out + self._event("response.output_item.added", output_index=self._index,
                                  item={**item, "arguments": "", "status": "in_progress"})
                + self._event("response.function_call_arguments.delta", item_id=item["id"],
                              output_index=self._index, delta=item["arguments"])
                + self._event("response.function_call_arguments.done", item_id=item["id"],
                              output_index=self._index, arguments=item["arguments"])
                + self._event("response.output_item.done", output_index=self._index, item=item))

    def end(self, done: Done) -> bytes:
        """The open item's end, then `response.completed` (or `.incomplete`) with the whole response."""
        answer = Answer("".join(self._text), done, "".join(self._thinking), tuple(self._calls))
        final = response_object(self.rid, self.body, self.model, self.created, answer)
        kind = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
        return self._start() + self._close() + self._event(kind, response=final)

    def error(self, message_text: str, code: str | None) -> bytes:
        """`response.failed`, with the error."""
        failed = response_object(self.rid, self.body, self.model, self.created, None, "failed")
        failed["error"] = {"code": code or "server_error", "message": message_text}
        return self._start() + self._event("response.failed", response=failed)
