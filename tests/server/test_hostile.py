"""Property-based hostile inputs: negative, huge, NaN, infinite and wrong-typed values on every route.

The property (security reference T16): every answer is 200 or a 4xx with a JSON error body in the
route's protocol, never a 5xx or a dropped connection, and no model is left acquired afterwards.
In-process over the fake service for volume; a smaller run against the live server with the real model.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from hearth.config import Settings
from hearth.server import create_app
from tests.server.conftest import LOCAL, MODEL, ServerProcess
from tests.server.fakes import FakeHearth

SPECIAL_NUMBERS = [0, -1, 1, 2**31, 2**31 - 1, 2**32, 2**63, 2**63 - 1, 2**64, -(2**63), -(2**64), 10**30,
                   0.5, -0.5, 1e308, -1e308, 5e-324, float("nan"), float("inf"), float("-inf")]
hostile = st.one_of(
    st.sampled_from(SPECIAL_NUMBERS),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.booleans(),
    st.none(),
    st.lists(st.one_of(st.integers(), st.text(max_size=3)), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
bad_messages = st.sampled_from([
    None, "string", 123, [], [123], [{}], [None], [{"role": 123}], [{"role": "user"}],
    [{"role": "user", "content": 123}], [{"role": "user", "content": None}], [{"role": "alien", "content": "x"}],
    [{"role": "user", "content": [{"type": "image_url"}]}], [{"role": "user", "content": [{}]}],
    [{"role": "user", "content": "x\u0000y"}], [{"role": "user", "content": {"nested": [[[[]]]]}}],
    [{"role": "user", "content": "hi", "images": ["not-base64"]}], [{"role": "user", "content": "hi"}] * 3,
])
many_stops = st.sampled_from([["x"] * 10_000, [""] * 20, ["a" * 1000], [1, 2], "stop", [None]])
schemas = st.sampled_from([
    {"type": "object"}, {"type": "array", "minItems": 10**9}, {"type": "string", "pattern": "a{99999}"},
    {"$ref": "http://169.254.169.254/"}, {"type": "bogus"}, [], "json", "", None, 5, {"properties": 5},
    {"type": "string", "maxLength": 2**63},
])

OPENAI_FIELDS = ["temperature", "top_p", "max_tokens", "max_completion_tokens", "seed", "n", "presence_penalty",
                 "frequency_penalty", "top_k", "min_p", "repeat_penalty", "logprobs", "top_logprobs", "logit_bias",
                 "stream_options", "user", "stop", "model", "response_format", "tools"]
OLLAMA_OPTIONS = ["num_ctx", "num_predict", "top_k", "top_p", "min_p", "temperature", "seed", "repeat_last_n",
                  "repeat_penalty", "presence_penalty", "frequency_penalty", "stop", "mirostat", "num_thread",
                  "grammar", "n_discard", "typical_p"]


def _client(service: FakeHearth) -> TestClient:
    return TestClient(create_app(service, Settings()), base_url=LOCAL, raise_server_exceptions=False,
                      client=("127.0.0.1", 50000))


def _check(response: httpx.Response, path: str) -> None:
    assert response.status_code == 200 or 400 <= response.status_code < 500, (path, response.text[:300])
    if response.status_code != 200:
        body = response.json()
        assert "error" in body
        if path.startswith("/v1"):
            assert isinstance(body["error"]["message"], str)
        else:
            assert isinstance(body["error"], str)


def _send(client: TestClient | httpx.Client, path: str, body: Any) -> httpx.Response:
    return client.post(path, content=json.dumps(body), headers={"Content-Type": "application/json"})


@st.composite
def openai_bodies(draw: st.DrawFn, model: str = "fake") -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    for name in draw(st.lists(st.sampled_from(OPENAI_FIELDS), max_size=4, unique=True)):
        if name == "stop":
            body[name] = draw(st.one_of(hostile, many_stops))
        elif name == "response_format":
            body[name] = draw(st.one_of(hostile, schemas.map(lambda s: {"type": "json_schema",
                                                                         "json_schema": {"name": "x", "schema": s}})))
        else:
            body[name] = draw(hostile)
    if draw(st.booleans()):
        body["messages"] = draw(st.one_of(bad_messages, hostile))
    return body


@st.composite
def ollama_bodies(draw: st.DrawFn, model: str = "fake", live: bool = False) -> dict[str, Any]:
    names = [n for n in OLLAMA_OPTIONS if not (live and n in ("num_ctx", "num_predict"))]
    options: Any = {name: draw(st.one_of(hostile, many_stops) if name == "stop" else hostile)
                    for name in draw(st.lists(st.sampled_from(names), max_size=4, unique=True))}
    if live:
        options["num_predict"] = 2
    elif draw(st.integers(0, 9)) == 0:
        options = draw(hostile)
    body: dict[str, Any] = {"model": model, "options": options, "stream": draw(st.booleans())}
    extra = draw(st.lists(st.sampled_from(["keep_alive", "format", "think", "raw", "system", "messages", "model",
                                           "images", "template", "context", "tools"]), max_size=3, unique=True))
    for name in extra:
        if name == "format":
            body[name] = draw(st.one_of(hostile, schemas))
        elif name == "messages":
            body[name] = draw(st.one_of(bad_messages, hostile))
        elif name == "keep_alive" and live:
            body[name] = draw(st.sampled_from(["5m", "-1", "1h30m", "soon", "5x", "", "NaN", None, True, [1]]))
        else:
            body[name] = draw(hostile)
    return body


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
LIVE_FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))


@FUZZ
@given(body=openai_bodies())
def test_openai_chat_never_5xx(body: dict[str, Any]) -> None:
    service = FakeHearth()
    with _client(service) as client:
        _check(_send(client, "/v1/chat/completions", body), "/v1/chat/completions")
        prompt = {**body, "prompt": body.get("messages")}
        _check(_send(client, "/v1/completions", prompt), "/v1/completions")
        _check(_send(client, "/v1/embeddings", {"model": body.get("model"), "input": body.get("messages"),
                                                 "dimensions": body.get("n")}), "/v1/embeddings")
    assert service.open == 0


@FUZZ
@given(body=ollama_bodies())
def test_ollama_routes_never_5xx(body: dict[str, Any]) -> None:
    service = FakeHearth()
    with _client(service) as client:
        chat = {**body, "messages": body.get("messages", [{"role": "user", "content": "hi"}])}
        _check(_send(client, "/api/chat", chat), "/api/chat")
        generate = {**body, "prompt": body.get("system", "hi")}
        _check(_send(client, "/api/generate", generate), "/api/generate")
        _check(_send(client, "/api/embed", {**body, "input": body.get("messages", "x")}), "/api/embed")
        for path in ("/api/show", "/api/copy"):
            _check(_send(client, path, {"model": body.get("model"), "name": body.get("system"),
                                        "source": body.get("model"), "destination": body.get("think")}), path)
        _check(client.request("DELETE", "/api/delete", content=json.dumps({"model": body.get("think")})), "/api/delete")
    assert service.open == 0


@FUZZ
@given(raw=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)),
       path=st.sampled_from(["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/api/chat",
                             "/api/generate", "/api/embed", "/api/show", "/api/copy"]))
def test_arbitrary_bytes_never_5xx(raw: bytes, path: str) -> None:
    with _client(FakeHearth()) as client:
        _check(client.post(path, content=raw), path)


@LIVE_FUZZ
@given(openai=openai_bodies(model=MODEL), ollama=ollama_bodies(model=MODEL, live=True))
def test_live_server_never_5xx(live: ServerProcess, openai: dict[str, Any], ollama: dict[str, Any]) -> None:
    openai["max_tokens"] = 2
    openai.pop("max_completion_tokens", None)
    with httpx.Client(base_url=live.url, timeout=60) as client:
        _check(_send(client, "/v1/chat/completions", openai), "/v1/chat/completions")
        chat = {**ollama, "messages": ollama.get("messages", [{"role": "user", "content": "hi"}])}
        _check(_send(client, "/api/chat", chat), "/api/chat")
    assert live.healthy()


def test_live_server_is_idle_and_healthy_after_the_fuzzing(live: ServerProcess) -> None:
    from tests.server.conftest import wait_for

    assert wait_for(lambda: all(m["in_flight"] == 0 for m in live.ps()), timeout=10)
    reply = httpx.post(live.url + "/api/generate", json={"model": MODEL, "prompt": "hi", "stream": False,
                                                          "options": {"num_predict": 1}}, timeout=30)
    assert reply.status_code == 200 and reply.json()["done"] is True
