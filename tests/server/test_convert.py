"""Pure pieces: protocol conversions, JSON-schema grammars, error mapping, Host parsing; and llama.cpp stays out."""

from __future__ import annotations

import subprocess
import sys

import psutil
import pytest

from hearth import errors
from hearth.config import Settings
from hearth.engine.grammar import json_grammar, schema_grammar
from hearth.server import errors as wire
from hearth.server import ollama, openai
from hearth.server.schemas import ChatCompletionRequest, OllamaGenerateRequest
from hearth.server.security import Policy, is_loopback
from hearth.types import Done, Stats
from tests.server.conftest import ServerProcess


def test_openai_request_maps_names_and_refuses_what_it_cannot_honour() -> None:
    body = ChatCompletionRequest.model_validate({
        "model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5, "seed": -1, "top_k": 3})
    native = openai.chat_request(body)
    assert native.options.requested() == {"num_predict": 5, "seed": None, "top_k": 3}  # seed -1: random
    with pytest.raises(errors.InvalidOptionError) as caught:
        openai.chat_request(ChatCompletionRequest.model_validate({
            "model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2**40}))
    assert caught.value.field == "max_tokens" and "'max_tokens'" in caught.value.message


def test_ollama_request_keep_alive_and_format() -> None:
    native = ollama.generate_request(OllamaGenerateRequest.model_validate(
        {"model": "m", "prompt": "p", "keep_alive": "1h30m", "format": "json", "raw": True}))
    assert native.keep_alive == 5400 and native.raw and native.stream
    assert native.options.grammar == json_grammar()
    assert ollama.keep_alive(-5) == -1 and ollama.keep_alive(0) == 0 and ollama.keep_alive(None) is None


def test_final_ollama_line_has_the_timings() -> None:
    done = Done("stop", Stats(prompt_tokens=3, completion_tokens=2, load_ns=5, prompt_ns=7, eval_ns=11, total_ns=20))
    assert ollama.timings(done) == {"total_duration": 25, "load_duration": 5, "prompt_eval_count": 3,
                                    "prompt_eval_duration": 7, "eval_count": 2, "eval_duration": 11}


@pytest.mark.parametrize("schema", [
    {"type": "string", "minLength": 10**9}, {"type": "array", "maxItems": 5000},
    {"type": "string", "pattern": "a{5000}"},
    {"type": "string", "pattern": "(a{100}){100}(b{100})"}, {"type": "bogus"}, {"$ref": "http://169.254.169.254/x"},
    {"properties": 5}, {"type": "number", "minimum": float("nan")}, [], "object",
])
def test_unusable_schemas_are_400s_naming_the_field(schema: object) -> None:
    with pytest.raises(errors.InvalidRequestError) as caught:
        schema_grammar(schema, field="format")
    assert caught.value.field == "format"


def test_deeply_nested_schema_is_refused() -> None:
    deep: dict = {}
    node = deep
    for _ in range(100):
        node["items"] = {}
        node = node["items"]
    with pytest.raises(errors.InvalidRequestError, match="nested"):
        schema_grammar(deep)


def test_error_bodies_per_protocol() -> None:
    err = wire.from_exception(errors.BusyError("full", hint="later", retry_after=9))
    assert err.status == 503 and err.headers() == {"Retry-After": "9"}
    assert wire.body(err, "/v1/chat/completions")["error"]["type"] == "server_busy_error"
    assert wire.body(err, "/api/chat") == {"error": "full (later)", "hint": "later"}
    assert wire.status_for(errors.WorkerCrashedError("x")) == 503
    assert wire.status_for(errors.InvalidNameError("x")) == 400


@pytest.mark.parametrize(("header", "ok"), [
    ("localhost:1", True), ("[::1]:5", True), ("::1", True), ("127.0.0.1", True), ("127.0.0.1.nip.io", False),
    ("[::1].evil", False), ("evil.example", False), ("", False), ("localhost:1:2", False),
])
def test_host_header_parsing(header: str, ok: bool) -> None:
    assert Policy.from_settings(Settings()).host_allowed(header) is ok


def test_loopback_detection() -> None:
    assert is_loopback("127.0.0.5") and is_loopback("::1") and is_loopback("[::1]") and is_loopback("LocalHost")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("10.0.0.1")


def test_the_server_never_loads_llama_cpp(live: ServerProcess) -> None:
    code = ("import sys; from hearth.server import create_app; from hearth.server.native import format_grammar;"
            "format_grammar({'type': 'object'}, 'format'); format_grammar('json', 'format');"
            "assert not [m for m in sys.modules if m.startswith('llama_cpp')], 'llama_cpp imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
    import httpx

    httpx.post(live.url + "/api/generate", json={"model": "smollm2:135m", "prompt": "hi", "format": {"type": "object"},
                                                 "stream": False, "options": {"num_predict": 2}}, timeout=60)
    maps = [m.path for m in psutil.Process(live.proc.pid).memory_maps()]
    assert not [p for p in maps if "libllama" in p or "libggml" in p]
