"""OpenAI's API as pure conversions: request bodies → `NativeRequest`, native results → response objects.

Nothing here does I/O. Supported: chat completions and completions (streamed as server-sent events or
not), `stop`, `max_tokens` / `max_completion_tokens`, `temperature`, `top_p`, `seed`, the two penalties,
`response_format` (`json_object`, `json_schema`: enforced by a llama.cpp grammar), `usage` and
`stream_options.include_usage`, function `tools` and `tool_choice`, and embeddings (floats or base64).
Parameters this server cannot honour (`n` > 1, `logprobs`, `logit_bias`, images; the full list is in
docs/api.md, checked by tests/server/test_documented_refusals.py) are refused with 400 naming the field,
rather than silently ignored.
"""

from __future__ import annotations

import base64
import json
import secrets
import struct
import time
from datetime import datetime
from typing import Any

from hearth.errors import InvalidRequestError
from hearth.options import Options
from hearth.server import tooling
from hearth.server.native import (
    NativeRequest,
    conversation_id,
    documents_field,
    embed_inputs,
    message,
    normalized,
    request_options,
    require_text,
)
from hearth.server.schemas import ChatCompletionRequest, ChatMessage, CompletionRequest, EmbeddingRequest
from hearth.service import Manifest, Remote, json_grammar, schema_grammar
from hearth.types import Answer, Done, ToolCall

# OpenAI name → Hearth (Ollama) option name
OPTION_NAMES = {
    "temperature": "temperature", "top_p": "top_p", "seed": "seed", "max_tokens": "num_predict",
    "presence_penalty": "presence_penalty", "frequency_penalty": "frequency_penalty", "stop": "stop",
    "top_k": "top_k", "min_p": "min_p", "repeat_penalty": "repeat_penalty",
}
_RANGES = {"temperature": (0.0, 2.0), "top_p": (0.0, 1.0), "presence_penalty": (-2.0, 2.0),
           "frequency_penalty": (-2.0, 2.0)}
FINISH = {"stop": "stop", "length": "length"}


# -- requests ---------------------------------------------------------------------------------------------
def _options(body: ChatCompletionRequest | CompletionRequest, max_tokens: int | None,
             grammar: str | None = None) -> Options:
    if body.n is not None and body.n != 1:
        raise InvalidRequestError("only n=1 is supported", field="n")
    if body.logit_bias:
        raise InvalidRequestError("logit_bias is not supported", field="logit_bias")
    if max_tokens is not None and max_tokens < 1:
        raise InvalidRequestError("max_tokens must be at least 1", field="max_tokens")
    for name, (low, high) in _RANGES.items():
        value = getattr(body, name)
        if value is not None and not low <= value <= high:
            raise InvalidRequestError(f"{name} must be between {low:g} and {high:g}", field=name)
    raw = {name: getattr(body, name, None) for name in OPTION_NAMES if name != "max_tokens"}
    raw["max_tokens"] = max_tokens
    options = {OPTION_NAMES[k]: v for k, v in raw.items() if v is not None}
    return request_options(options, OPTION_NAMES, grammar=grammar)


def _content(msg: ChatMessage, index: int) -> str:
    content = msg.content
    if content is None:
        if msg.role == "assistant":
            return ""
        raise InvalidRequestError("message content is required", field=f"messages[{index}].content")
    if isinstance(content, str):
        return content
    texts = []
    for j, part in enumerate(content):
        if part.type != "text" or part.text is None:
            raise InvalidRequestError(f"only text content is supported, not {part.type[:32]!r}",
                                      field=f"messages[{index}].content[{j}]")
        texts.append(part.text)
    return "\n".join(texts)


def _response_grammar(body: ChatCompletionRequest) -> str | None:
    fmt = body.response_format
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return json_grammar()
    if fmt.type == "json_schema":
        if fmt.json_schema is None or fmt.json_schema.schema_ is None:
            raise InvalidRequestError("json_schema.schema is required", field="response_format.json_schema")
        return schema_grammar(fmt.json_schema.schema_, field="response_format.json_schema.schema")
    raise InvalidRequestError("response_format.type must be text, json_object or json_schema",
                              field="response_format.type")


def chat_request(body: ChatCompletionRequest) -> NativeRequest:
    """A chat completion request in native terms (400 for what cannot be honoured)."""
    if body.logprobs:
        raise InvalidRequestError("logprobs are not supported", field="logprobs")
    turn = tooling.openai_turn(body.tools, body.tool_choice)
    if not body.messages:
        raise InvalidRequestError("messages must not be empty", field="messages")
    messages = []
    for i, msg in enumerate(body.messages):
        role = "system" if msg.role == "developer" else msg.role
        messages.append(tooling.with_calls(message(role, _content(msg, i), i), msg.model_extra or {}, i))
    max_tokens = body.max_completion_tokens if body.max_completion_tokens is not None else body.max_tokens
    options = _options(body, max_tokens, _response_grammar(body))
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return NativeRequest(body.model, messages=messages, options=options, stream=bool(body.stream),
                         include_usage=include_usage, turn=turn, conversation_id=conversation_id(body.model_extra),
                         documents=documents_field(body.model_extra))


def completion_request(body: CompletionRequest) -> NativeRequest:
    """A (raw, template-free) completion request in native terms."""
    prompt = body.prompt
    if isinstance(prompt, list):
        if len(prompt) != 1 or not isinstance(prompt[0], str):
            raise InvalidRequestError("prompt must be one string (token arrays and batches are not supported)",
                                      field="prompt")
        prompt = prompt[0]
    if body.echo:
        raise InvalidRequestError("echo is not supported", field="echo")
    if body.suffix:
        raise InvalidRequestError("suffix (fill-in-the-middle) is not supported", field="suffix")
    if body.best_of is not None and body.best_of != 1:
        raise InvalidRequestError("only best_of=1 is supported", field="best_of")
    if body.logprobs:
        raise InvalidRequestError("logprobs are not supported", field="logprobs")
    if not prompt:
        raise InvalidRequestError("prompt must not be empty", field="prompt")
    options = _options(body, body.max_tokens if body.max_tokens is not None else 16)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return NativeRequest(body.model, prompt=require_text(prompt, "prompt"), options=options,
                         stream=bool(body.stream), raw=True, include_usage=include_usage)


def embedding_inputs(body: EmbeddingRequest) -> list[str]:
    """The texts to embed."""
    if body.dimensions is not None:
        raise InvalidRequestError("dimensions is not supported", field="dimensions")
    return embed_inputs(body.input, "input")


# -- responses --------------------------------------------------------------------------------------------
def new_id(prefix: str) -> str:
    """A response id like OpenAI's (`chatcmpl-...`, `cmpl-...`)."""
    return f"{prefix}-{secrets.token_hex(12)}"


def usage(done: Done) -> dict[str, Any]:
    """Token counts of a finished generation."""
    s = done.stats
    out = {"prompt_tokens": s.prompt_tokens, "completion_tokens": s.completion_tokens,
           "total_tokens": s.prompt_tokens + s.completion_tokens,
           "prompt_tokens_details": {"cached_tokens": s.cached_tokens}}
    if s.draft_tokens:  # speculative decoding, in OpenAI's predicted-outputs fields
        out["completion_tokens_details"] = {"accepted_prediction_tokens": s.accepted_tokens,
                                            "rejected_prediction_tokens": s.draft_tokens - s.accepted_tokens}
    return out


def chat_response(model: str, answer: Answer, rid: str, created: int) -> dict[str, Any]:
    """A whole `chat.completion` object, with its reasoning and tool calls."""
    message_body: dict[str, Any] = {"role": "assistant", "content": answer.text}
    finish = FINISH.get(answer.done.reason, "stop")
    if answer.thinking:
        message_body["reasoning_content"] = answer.thinking
    if answer.calls:
        message_body["tool_calls"] = tooling.openai_calls(list(answer.calls))
        if not answer.text.strip():
            message_body["content"] = None
        finish = "tool_calls"
    return {
        "id": rid, "object": "chat.completion", "created": created, "model": model,
        "system_fingerprint": "hearth",
        "choices": [{"index": 0, "message": message_body, "logprobs": None, "finish_reason": finish}],
        "usage": usage(answer.done),
    }


def completion_response(model: str, answer: Answer, rid: str, created: int) -> dict[str, Any]:
    """A whole `text_completion` object."""
    return {
        "id": rid, "object": "text_completion", "created": created, "model": model,
        "system_fingerprint": "hearth",
        "choices": [{"index": 0, "text": answer.text, "logprobs": None,
                     "finish_reason": FINISH.get(answer.done.reason, "stop")}],
        "usage": usage(answer.done),
    }


def _sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


def error_event(message_text: str, code: str | None) -> bytes:
    """An in-band error for a stream that already started (the HTTP status cannot change any more)."""
    return _sse({"error": {"message": message_text, "type": "server_error", "param": None, "code": code}})


class ChatStream:
    """Encodes one streamed chat answer as `chat.completion.chunk` server-sent events."""

    media_type = "text/event-stream"

    def __init__(self, model: str, include_usage: bool, *, rid: str | None = None) -> None:
        self.model = model
        self.include_usage = include_usage
        self.id = rid or new_id("chatcmpl")
        self.created = int(time.time())
        self._role_sent = False
        self._calls = 0
        self.final_extra: dict[str, Any] = {}  # top-level fields for the finishing chunk (`sources`)

    def _chunk(self, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "system_fingerprint": "hearth",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def text(self, text: str) -> bytes:
        """A chunk carrying `text` (the first one also carries the role)."""
        delta = {"content": text}
        if not self._role_sent:
            delta = {"role": "assistant", "content": text}
            self._role_sent = True
        return _sse(self._chunk(delta, None))

    def _delta(self, delta: dict[str, Any]) -> bytes:
        if not self._role_sent:
            delta = {"role": "assistant", **delta}
            self._role_sent = True
        return _sse(self._chunk(delta, None))

    def thinking(self, text: str) -> bytes:
        """A chunk carrying reasoning (`reasoning_content`, as llama-server and DeepSeek send it)."""
        return self._delta({"reasoning_content": text})

    def tool_call(self, call: ToolCall) -> bytes:
        """A chunk carrying one complete tool call."""
        entry = {"index": self._calls, **tooling.openai_calls([call])[0]}
        self._calls += 1
        return self._delta({"tool_calls": [entry]})

    def end(self, done: Done) -> bytes:
        """The closing chunks: finish reason, usage when asked for, then `[DONE]`."""
        out = b""
        if not self._role_sent:
            out += _sse(self._chunk({"role": "assistant", "content": ""}, None))
        finish = "tool_calls" if self._calls and done.reason == "stop" else FINISH.get(done.reason, "stop")
        out += _sse({**self._chunk({}, finish), **self.final_extra})
        if self.include_usage:
            out += _sse({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                         "model": self.model, "system_fingerprint": "hearth", "choices": [], "usage": usage(done)})
        return out + b"data: [DONE]\n\n"

    def error(self, message_text: str, code: str | None) -> bytes:
        """An in-band error event ending the stream."""
        return error_event(message_text, code)


class CompletionStream(ChatStream):
    """Encodes one streamed completion as `text_completion` server-sent events."""

    def __init__(self, model: str, include_usage: bool) -> None:
        super().__init__(model, include_usage, rid=new_id("cmpl"))

    def _completion_chunk(self, text: str, finish: str | None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self.id, "object": "text_completion", "created": self.created, "model": self.model,
            "system_fingerprint": "hearth",
            "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}],
        }
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def text(self, text: str) -> bytes:
        """A chunk carrying `text`."""
        return _sse(self._completion_chunk(text, None))

    def end(self, done: Done) -> bytes:
        """The closing chunks."""
        out = _sse(self._completion_chunk("", FINISH.get(done.reason, "stop")))
        if self.include_usage:
            out += _sse({"id": self.id, "object": "text_completion", "created": self.created, "model": self.model,
                         "system_fingerprint": "hearth", "choices": [], "usage": usage(done)})
        return out + b"data: [DONE]\n\n"


def embedding_response(model: str, vectors: list[list[float]], prompt_tokens: int,
                       encoding: str | None) -> dict[str, Any]:
    """A `list` of `embedding` objects (unit vectors; base64 is little-endian float32, as OpenAI sends)."""
    data = []
    for i, vector in enumerate(vectors):
        unit = normalized(vector)
        value: Any = unit
        if encoding == "base64":
            value = base64.b64encode(struct.pack(f"<{len(unit)}f", *unit)).decode()
        data.append({"object": "embedding", "index": i, "embedding": value})
    return {"object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}}


def _created(manifest: Manifest) -> int:
    try:
        return int(datetime.fromisoformat(manifest.provenance.created_at.replace("Z", "+00:00")).timestamp())
    except (ValueError, TypeError):
        return 0


def model_object(manifest: Manifest) -> dict[str, Any]:
    """One entry of `GET /v1/models`."""
    return {"id": manifest.name, "object": "model", "created": _created(manifest), "owned_by": "hearth"}


def model_list(manifests: list[Manifest], remotes: list[Remote] | None = None) -> dict[str, Any]:
    """`GET /v1/models` (remote models are owned by the server they run on)."""
    data = [model_object(m) for m in manifests]
    data += [{"id": r.name, "object": "model", "created": 0, "owned_by": r.url} for r in remotes or []]
    return {"object": "list", "data": data}
