"""Ollama's API as pure conversions: request bodies → `NativeRequest`, native results → response objects.

Nothing here does I/O. Streams are NDJSON (one JSON object per line; Ollama streams unless `stream` is
false); the last object has `done: true`, `done_reason` and the timing fields in nanoseconds
(`total_duration`, `load_duration`, `prompt_eval_count`, `prompt_eval_duration`, `eval_count`,
`eval_duration`). An error after the stream started is one `{"error": "..."}` line.
"""

from __future__ import annotations

import json
from typing import Any

from hearth.config import parse_duration
from hearth.errors import InvalidRequestError
from hearth.options import Options
from hearth.server import tooling
from hearth.server.native import (
    NativeRequest,
    conversation_id,
    documents_field,
    format_grammar,
    human_count,
    iso_in,
    iso_now,
    message,
    ndjson,
    normalized,
    request_options,
    require_text,
)
from hearth.server.schemas import OllamaChatRequest, OllamaGenerateRequest
from hearth.service import Manifest, Remote, RemoteUse, Running
from hearth.types import Answer, Done, ToolCall

# Ollama's /api/version answer: the Ollama API level this server implements (clients gate features on it).
COMPATIBLE_VERSION = "0.12.0"
FOREVER = 100 * 365 * 86400.0


# -- requests ---------------------------------------------------------------------------------------------
def keep_alive(value: Any) -> float | None:
    """Seconds from Ollama's `keep_alive` ("5m", 300, 0, -1); None when not given."""
    if value is None or value == "":
        return None
    return parse_duration(value)


def _common(body: OllamaChatRequest | OllamaGenerateRequest) -> tuple[Options, float | None]:
    if body.logprobs:
        raise InvalidRequestError("logprobs are not supported", field="logprobs")
    options = request_options(dict(body.options or {}), grammar=format_grammar(body.format, "format"))
    return options, keep_alive(body.keep_alive)


def chat_request(body: OllamaChatRequest) -> NativeRequest:
    """An `/api/chat` request in native terms; no messages means "just load (or unload) the model"."""
    turn = tooling.ollama_turn(body.tools, body.think if body.think != "" else None)
    options, alive = _common(body)
    messages = []
    for i, msg in enumerate(body.messages or []):
        if msg.images:
            raise InvalidRequestError("this model does not accept images", field=f"messages[{i}].images")
        messages.append(tooling.with_calls(message(msg.role, msg.content or "", i), msg.model_extra or {}, i))
    return NativeRequest(body.model, messages=messages or None, options=options,
                         stream=body.stream is not False, keep_alive=alive, turn=turn,
                         conversation_id=conversation_id(body.model_extra), documents=documents_field(body.model_extra))


def generate_request(body: OllamaGenerateRequest) -> NativeRequest:
    """An `/api/generate` request in native terms; no prompt means "just load (or unload) the model"."""
    if body.images:
        raise InvalidRequestError("this model does not accept images", field="images")
    if body.suffix:
        raise InvalidRequestError("suffix (fill-in-the-middle) is not supported", field="suffix")
    if body.template:
        raise InvalidRequestError("a per-request template is not supported; use the model's own",
                                  field="template")
    if body.think not in (None, False, ""):
        raise InvalidRequestError("thinking is available on /api/chat", field="think")
    options, alive = _common(body)
    prompt = require_text(body.prompt, "prompt") if body.prompt else None
    system = require_text(body.system, "system") if body.system else None
    return NativeRequest(body.model, prompt=prompt, options=options, stream=body.stream is not False,
                         raw=bool(body.raw), system=system, keep_alive=alive)


# -- responses --------------------------------------------------------------------------------------------
def timings(done: Done) -> dict[str, Any]:
    """The final statistics fields, in nanoseconds."""
    s = done.stats
    out = {
        "total_duration": s.total_ns + s.load_ns, "load_duration": s.load_ns,
        "prompt_eval_count": s.prompt_tokens, "prompt_eval_duration": s.prompt_ns,
        "eval_count": s.completion_tokens, "eval_duration": s.eval_ns,
    }
    if s.draft_tokens:  # speculative decoding (a Hearth extension): tokens drafted, and of those accepted
        out |= {"draft_count": s.draft_tokens, "draft_accepted_count": s.accepted_tokens}
    return out


def _reason(done: Done) -> str:
    return done.reason if done.reason in ("stop", "length") else "stop"


def chat_response(model: str, answer: Answer) -> dict[str, Any]:
    """A whole (non-streamed) chat answer, with its thinking and tool calls."""
    message_body: dict[str, Any] = {"role": "assistant", "content": answer.text}
    if answer.thinking:
        message_body["thinking"] = answer.thinking
    if answer.calls:
        message_body["tool_calls"] = tooling.ollama_calls(list(answer.calls))
        if not answer.text.strip():
            message_body["content"] = ""
    return {"model": model, "created_at": iso_now(), "message": message_body,
            "done": True, "done_reason": _reason(answer.done), **timings(answer.done)}


def generate_response(model: str, answer: Answer) -> dict[str, Any]:
    """A whole (non-streamed) generate answer."""
    return {"model": model, "created_at": iso_now(), "response": answer.text, "done": True,
            "done_reason": _reason(answer.done), **timings(answer.done)}


def lifecycle_response(model: str, reason: str, *, chat: bool) -> dict[str, Any]:
    """The answer to a request without a prompt: the model was loaded ("load") or unloaded ("unload")."""
    body: dict[str, Any] = {"model": model, "created_at": iso_now()}
    if chat:
        body["message"] = {"role": "assistant", "content": ""}
    else:
        body["response"] = ""
    return {**body, "done": True, "done_reason": reason}


class ChatStream:
    """Encodes one streamed chat answer as NDJSON."""

    media_type = "application/x-ndjson"
    key = "message"

    def __init__(self, model: str) -> None:
        self.model = model
        self.final_extra: dict[str, Any] = {}  # top-level fields for the `done` line (`sources`)

    def _payload(self, text: str) -> Any:
        return {"role": "assistant", "content": text}

    def text(self, text: str) -> bytes:
        """A line carrying `text`."""
        return ndjson({"model": self.model, "created_at": iso_now(), self.key: self._payload(text), "done": False})

    def thinking(self, text: str) -> bytes:
        """A line carrying thinking (`message.thinking`)."""
        return self._extra({"thinking": text})

    def tool_call(self, call: ToolCall) -> bytes:
        """A line carrying one complete tool call (`message.tool_calls`)."""
        return self._extra({"tool_calls": tooling.ollama_calls([call])})

    def _extra(self, fields: dict[str, Any]) -> bytes:
        if self.key != "message":
            return b""
        return ndjson({"model": self.model, "created_at": iso_now(),
                      "message": {"role": "assistant", "content": "", **fields}, "done": False})

    def end(self, done: Done) -> bytes:
        """The final line with `done: true` and the statistics."""
        return ndjson({"model": self.model, "created_at": iso_now(), self.key: self._payload(""), "done": True,
                      "done_reason": _reason(done), **timings(done), **self.final_extra})

    def error(self, message_text: str, code: str | None) -> bytes:
        """An in-band error line ending the stream."""
        return ndjson({"error": message_text})


class GenerateStream(ChatStream):
    """Encodes one streamed generate answer as NDJSON."""

    key = "response"

    def _payload(self, text: str) -> Any:
        return text


def embed_response(model: str, vectors: list[list[float]], prompt_tokens: int, total_ns: int) -> dict[str, Any]:
    """`/api/embed`: unit-length vectors, one per input."""
    return {"model": model, "embeddings": [normalized(v) for v in vectors], "total_duration": total_ns,
            "load_duration": 0, "prompt_eval_count": prompt_tokens}


def details(manifest: Manifest) -> dict[str, Any]:
    """The `details` object of tags, show and ps."""
    info = manifest.info
    return {"parent_model": "", "format": "gguf", "family": info.architecture, "families": [info.architecture],
            "parameter_size": human_count(info.parameter_count), "quantization_level": info.quantization}


def _hex(digest: str) -> str:
    return digest.split(":", 1)[-1]


def tags(manifests: list[Manifest], fit: dict[str, str] | None = None,
         remotes: list[Remote] | None = None) -> dict[str, Any]:
    """`GET /api/tags`: the models on disk (plus Hearth's `fit` label: fits / tight / too large), then the remote
    ones with Ollama's `remote_model` and `remote_host` fields (what Ollama lists its cloud models with)."""
    models: list[dict[str, Any]] = []
    for m in manifests:
        entry = {"name": m.name, "model": m.name, "modified_at": m.provenance.created_at, "size": m.size,
                 "digest": _hex(m.digest), "details": details(m)}
        if fit and m.name in fit:
            entry["fit"] = fit[m.name]
        models.append(entry)
    for r in remotes or []:
        models.append({"name": r.name, "model": r.name, "modified_at": r.added, "size": 0, "digest": "",
                       "remote_model": r.model, "remote_host": r.url,
                       "details": {"format": "", "family": "", "families": [], "parameter_size": "",
                                   "quantization_level": ""}})
    return {"models": models}


def _parameters(manifest: Manifest) -> str:
    lines = []
    for key, value in sorted(manifest.parameters.items()):
        for item in value if isinstance(value, list) else [value]:
            lines.append(f"{key:<30} {json.dumps(item) if isinstance(item, str) else item}")
    return "\n".join(lines)


def show(manifest: Manifest, modelfile: str) -> dict[str, Any]:
    """`POST /api/show`: what a model is (`modelfile`: the service's Modelfile for it, naming no files)."""
    info = manifest.info
    arch = info.architecture
    template = manifest.template or info.chat_template or ""
    model_info: dict[str, Any] = {"general.architecture": arch, "general.parameter_count": info.parameter_count,
                                  "general.file_type": info.quantization}
    for key, value in (("context_length", info.context_length), ("embedding_length", info.embedding_length),
                       ("block_count", info.block_count), ("attention.head_count", info.head_count),
                       ("attention.head_count_kv", info.head_count_kv)):
        if value is not None:
            model_info[f"{arch}.{key}"] = value
    out: dict[str, Any] = {
        "license": manifest.provenance.license or info.license or "",
        "modelfile": modelfile, "parameters": _parameters(manifest), "template": template,
        "details": details(manifest), "model_info": model_info, "capabilities": ["completion"],
        "modified_at": manifest.provenance.created_at,
    }
    if manifest.system:
        out["system"] = manifest.system
    return out


def ps_remote_entry(use: RemoteUse) -> dict[str, Any]:
    """A remote model in `GET /api/ps`: Ollama's `remote_model`/`remote_host` (as in its tags), answers in flight,
    and `expires_at` when it drops off the list (five minutes after its last answer)."""
    r = use.remote
    return {"name": r.name, "model": r.name, "size": 0, "digest": "", "remote_model": r.model, "remote_host": r.url,
            "details": {"format": "", "family": "", "families": [], "parameter_size": "", "quantization_level": ""},
            "expires_at": iso_in(use.listed_for), "size_vram": 0, "in_flight": use.in_flight,
            "idle_seconds": round(use.idle_for, 1)}


def ps_entry(model: Running) -> dict[str, Any]:
    """One entry of `GET /api/ps` (Ollama's fields, plus Hearth's worker pid, memory and load)."""
    stats = model.worker
    return {
        "name": model.name, "model": model.name, "size": model.size, "digest": _hex(model.manifest.digest),
        "details": details(model.manifest),
        "expires_at": iso_in(FOREVER if model.expires_in is None else model.expires_in), "size_vram": 0,
        "context_length": model.n_ctx, "pid": model.pid, "memory_rss": model.memory_rss,
        "memory_estimate": model.memory_estimate, "in_flight": model.in_flight, "slots": model.slots,
        "keep_alive": model.keep_alive, "slots_busy": stats.get("slots_busy"), "cache_hits": stats.get("cache_hits"),
        "cached_tokens": stats.get("cached_tokens"), "prompt_cache_bytes": stats.get("cache_bytes"),
        "engine": None if model.engine is None else model.engine.to_dict(),
        "speculative": model.speculative, "draft_tokens": stats.get("draft_tokens"),
        "accepted_tokens": stats.get("accepted_tokens"),
    }
