"""Every route over a fake service: response shapes of both protocols, streaming, errors mapped by class."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from hearth import errors
from hearth.types import Message
from tests.server.fakes import WORDS, FakeHearth

TEXT = "".join(WORDS)
MSGS = [{"role": "user", "content": "hi"}]


def sse(text: str) -> list[str]:
    return [line[len("data: "):] for line in text.split("\n\n") if line.startswith("data: ")]


def test_health_root_version_and_openapi(client: TestClient) -> None:
    assert client.get("/health").json()["status"] == "ok"
    assert client.get("/").text == "Hearth is running"
    assert client.head("/").status_code == 200
    assert client.get("/api/version").json()["version"]
    spec = client.get("/openapi.json").json()
    for path in ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models", "/api/chat",
                 "/api/generate", "/api/embed", "/api/tags", "/api/show", "/api/ps", "/api/delete", "/api/copy",
                 "/health", "/metrics"):
        assert path in spec["paths"], path
    assert '"422"' not in json.dumps(spec["paths"])  # this server answers 400, never 422


def test_openai_models(client: TestClient) -> None:
    body = client.get("/v1/models").json()
    assert body["object"] == "list"
    assert body["data"][0] == {"id": "fake:latest", "object": "model", "created": body["data"][0]["created"],
                               "owned_by": "hearth"}
    assert client.get("/v1/models/fake").json()["id"] == "fake:latest"
    assert client.get("/v1/models/nope").status_code == 404


def test_openai_chat_whole(client: TestClient, fake: FakeHearth) -> None:
    body = client.post("/v1/chat/completions", json={"model": "fake", "messages": [
        {"role": "developer", "content": "be brief"}, {"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "temperature": 0, "seed": 7, "max_completion_tokens": 100, "stop": ["\n\n"], "top_p": 0.5,
        "presence_penalty": 0.1, "frequency_penalty": 0.2}).json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["choices"][0]["message"] == {"role": "assistant", "content": TEXT}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    model, messages, options, _ = fake.calls[-1][1]
    assert messages == [Message("system", "be brief"), Message("user", "hi")]
    assert options.requested() == {"temperature": 0, "seed": 7, "num_predict": 100, "stop": ["\n\n"], "top_p": 0.5,
                                   "presence_penalty": 0.1, "frequency_penalty": 0.2}


def test_openai_chat_stream_with_usage(client: TestClient) -> None:
    response = client.post("/v1/chat/completions", json={"model": "fake", "messages": MSGS, "stream": True,
                                                          "stream_options": {"include_usage": True}})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse(response.text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == TEXT
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == len(WORDS)
    assert sum(1 for c in chunks if c.get("usage")) == 1


def test_openai_completion_and_length(client: TestClient, fake: FakeHearth) -> None:
    body = client.post("/v1/completions", json={"model": "fake", "prompt": "Once", "max_tokens": 2}).json()
    assert body["object"] == "text_completion"
    assert body["choices"][0]["text"] == "Hello from"
    assert body["choices"][0]["finish_reason"] == "length"
    assert fake.calls[-1][0] == "generate" and fake.calls[-1][1][4] is True  # raw
    stream = client.post("/v1/completions", json={"model": "fake", "prompt": ["Once"], "stream": True}).text
    chunks = [json.loads(e) for e in sse(stream)[:-1]]
    assert "".join(c["choices"][0]["text"] for c in chunks) == "Hello from the fake model."  # default max 16


def test_openai_embeddings_float_and_base64(client: TestClient) -> None:
    body = client.post("/v1/embeddings", json={"model": "fake", "input": ["a", "b"]}).json()
    assert [d["index"] for d in body["data"]] == [0, 1]
    assert body["data"][0]["embedding"] == pytest.approx([0.6, 0.8])
    b64 = client.post("/v1/embeddings", json={"model": "fake", "input": "a", "encoding_format": "base64"}).json()
    raw = base64.b64decode(b64["data"][0]["embedding"])
    assert struct.unpack("<2f", raw) == pytest.approx((0.6, 0.8))


def test_ollama_tags_show_ps(client: TestClient) -> None:
    tags = client.get("/api/tags").json()["models"]
    assert set(tags[0]) >= {"name", "model", "modified_at", "size", "digest", "details"}
    assert set(tags[0]["details"]) == {"parent_model", "format", "family", "families", "parameter_size",
                                       "quantization_level"}
    assert tags[0]["digest"] == "ab" * 32
    show = client.post("/api/show", json={"model": "fake"}).json()
    assert show["details"]["family"] == "llama" and show["model_info"]["general.architecture"] == "llama"
    assert "temperature" in show["parameters"]
    assert client.post("/api/show", json={"name": "fake"}).status_code == 200
    assert client.get("/api/ps").json() == {"models": []}
    client.post("/api/generate", json={"model": "fake"})  # an empty request loads the model
    ps = client.get("/api/ps").json()["models"][0]
    assert set(ps) >= {"name", "model", "size", "digest", "details", "expires_at", "size_vram", "context_length"}
    assert ps["pid"] == 4242


def test_ollama_chat_stream_is_ndjson_by_default(client: TestClient, fake: FakeHearth) -> None:
    response = client.post("/api/chat", json={"model": "fake", "messages": MSGS, "options": {"num_predict": 3},
                                              "keep_alive": "10m", "format": "json"})
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [line["done"] for line in lines] == [False, False, False, True]
    assert "".join(line["message"]["content"] for line in lines) == "Hello from the"
    last = lines[-1]
    assert last["done_reason"] == "length"
    for key in ("total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_count",
                "eval_duration"):
        assert isinstance(last[key], int), key
    _, _, options, keep_alive = fake.calls[-1][1]
    assert keep_alive == 600 and "root" in options.grammar


def test_ollama_generate_whole_and_lifecycle(client: TestClient, fake: FakeHearth) -> None:
    body = client.post("/api/generate", json={"model": "fake", "prompt": "hi", "stream": False, "system": "s",
                                              "raw": False}).json()
    assert body["response"] == TEXT and body["done"] is True and body["done_reason"] == "stop"
    assert fake.calls[-1][1][3] == "s"
    assert client.post("/api/generate", json={"model": "fake"}).json()["done_reason"] == "load"
    assert client.post("/api/chat", json={"model": "fake", "messages": []}).json()["done_reason"] == "load"
    unloaded = client.post("/api/generate", json={"model": "fake", "keep_alive": 0}).json()
    assert unloaded["done_reason"] == "unload" and fake.loaded == {}


def test_ollama_embed_delete_copy(client: TestClient, fake: FakeHearth) -> None:
    body = client.post("/api/embed", json={"model": "fake", "input": ["a", "b"]}).json()
    assert body["embeddings"] == [pytest.approx([0.6, 0.8])] * 2
    assert client.post("/api/embeddings", json={"model": "fake", "prompt": "a"}).json()["embedding"] == [3.0, 4.0]
    assert client.post("/api/copy", json={"source": "fake", "destination": "other"}).status_code == 200
    conflict = client.post("/api/copy", json={"source": "fake", "destination": "other"})
    assert conflict.status_code == 409 and "already exists" in conflict.json()["error"]
    assert client.request("DELETE", "/api/delete", json={"model": "other"}).status_code == 200
    missing = client.request("DELETE", "/api/delete", json={"model": "other"})
    assert missing.status_code == 404 and "not found" in missing.json()["error"]


def test_unknown_model_is_404_with_a_hint_in_both_shapes(client: TestClient) -> None:
    openai = client.post("/v1/chat/completions", json={"model": "nope", "messages": MSGS})
    assert openai.status_code == 404
    error = openai.json()["error"]
    assert error["code"] == "model_not_found" and "/v1/models" in error["message"] and error["hint"]
    ollama = client.post("/api/chat", json={"model": "nope", "messages": MSGS})
    assert ollama.status_code == 404
    assert "not found" in ollama.json()["error"] and "/api/tags" in ollama.json()["hint"]


@pytest.mark.parametrize(("err", "status"), [
    (errors.InvalidOptionError("bad", field="top_k"), 400), (errors.ContextOverflowError("too long"), 400),
    (errors.TemplateError("boom"), 400), (errors.NotFoundError("gone"), 404), (errors.ConflictError("taken"), 409),
    (errors.BusyError("busy", retry_after=7), 503), (errors.InsufficientMemoryError("big"), 507),
    (errors.WorkerCrashedError("died"), 503), (errors.EngineError("broke"), 500), (errors.StoreError("bad"), 500),
    (RuntimeError("secret /home/path detail"), 500),
])
def test_errors_map_by_class(client: TestClient, fake: FakeHearth, err: Exception, status: int) -> None:
    fake.fail = err
    for path, body in (("/v1/chat/completions", {"model": "fake", "messages": MSGS}),
                       ("/api/generate", {"model": "fake", "prompt": "x"}),
                       ("/api/embed", {"model": "fake", "input": "x"})):
        response = client.post(path, json=body)
        assert response.status_code == status, (path, response.text)
        payload = response.json()["error"]
        text = payload["message"] if path.startswith("/v1") else payload
        assert "secret" not in text
        if status == 503:
            assert int(response.headers["retry-after"]) >= 1
    if isinstance(err, errors.ContextOverflowError):
        assert client.post("/v1/chat/completions", json={"model": "fake", "messages": MSGS}).json()["error"][
            "code"] == "exceed_context_size_error"


def test_worker_crash_mid_stream_ends_with_an_error_event(client: TestClient, fake: FakeHearth) -> None:
    fake.crash_after = 2
    lines = client.post("/api/chat", json={"model": "fake", "messages": MSGS}).text.splitlines()
    assert [json.loads(x) for x in lines[:2]][1]["message"]["content"] == " from"
    assert "error" in json.loads(lines[-1]) and len(lines) == 3
    events = sse(client.post("/v1/chat/completions", json={"model": "fake", "messages": MSGS, "stream": True}).text)
    assert "error" in json.loads(events[-1]) and "[DONE]" not in events
    whole = client.post("/api/generate", json={"model": "fake", "prompt": "x", "stream": False})
    assert whole.status_code == 503 and "stopped" in whole.json()["error"]
    assert fake.open == 0


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/v1/chat/completions", {"model": "fake"}, "messages"),
    ("/v1/chat/completions", {"model": "fake", "messages": "hi"}, "messages"),
    ("/v1/chat/completions", {"model": "fake", "messages": MSGS, "temperature": "hot"}, "temperature"),
    ("/v1/chat/completions", {"model": "fake", "messages": MSGS, "temperature": 3}, "temperature"),
    ("/v1/chat/completions", {"model": "fake", "messages": MSGS, "max_tokens": -1}, "max_tokens"),
    ("/v1/chat/completions", {"model": "fake", "messages": MSGS, "max_tokens": 2**31}, "max_tokens"),
    ("/v1/chat/completions", {"model": "fake", "messages": MSGS, "n": 2}, "n"),
    ("/v1/chat/completions", {"model": "fake", "messages": MSGS, "seed": True}, "seed"),
    ("/v1/chat/completions", {"model": "fake", "messages": MSGS, "tools": [{"type": "function"}]}, "tools"),
    ("/v1/chat/completions", {"model": "fake", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
    ("/v1/chat/completions", {"model": "fake", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "x"}}]}]}, "messages[0].content[0]"),
    ("/v1/chat/completions", {"model": "fake", "messages": MSGS, "response_format": {"type": "json_schema",
                              "json_schema": {"name": "x", "schema": {"type": "bogus"}}}},
     "response_format.json_schema.schema"),
    ("/v1/completions", {"model": "fake", "prompt": [1, 2, 3]}, "prompt"),
    ("/v1/embeddings", {"model": "fake", "input": []}, "input"),
    ("/api/chat", {"model": "fake", "messages": MSGS, "options": {"temperature": float("nan")}}, None),
    ("/api/chat", {"model": "fake", "messages": MSGS, "options": {"top_k": -5}}, "top_k"),
    ("/api/chat", {"model": "fake", "messages": MSGS, "options": {"flux_capacitor": 1}}, "flux_capacitor"),
    ("/api/chat", {"model": "fake", "messages": MSGS, "keep_alive": "soon"}, "keep_alive"),
    ("/api/chat", {"model": "fake", "messages": MSGS, "format": "xml"}, "format"),
    ("/api/generate", {"model": "fake", "prompt": "x", "images": ["aGk="]}, "images"),
    ("/api/generate", {"model": 5, "prompt": "x"}, "model"),
    ("/api/embed", {"model": "fake", "input": [1]}, "input"),
])
def test_bad_parameters_are_400_naming_the_field(client: TestClient, fake: FakeHearth, path: str, body: dict,
                                                 field: str | None) -> None:
    response = client.post(path, content=json.dumps(body))  # json.dumps writes NaN, as some clients do
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    if path.startswith("/v1"):
        assert error["type"] == "invalid_request_error"
        if field:
            assert error["param"] == field
    elif field:
        assert response.json()["field"] == field
    assert fake.open == 0


def test_malformed_bodies_are_400_not_422(client: TestClient) -> None:
    for content in (b"", b"{", b"[1,2]", b"null", b'"x"', b"\xff\xfe", b'{"model": "fake", "messages": [' * 2000):
        for path in ("/v1/chat/completions", "/api/chat", "/api/show"):
            response = client.post(path, content=content)
            assert response.status_code == 400, (path, content[:20], response.text)
            assert "error" in response.json()


def test_unknown_route_and_method(client: TestClient) -> None:
    assert client.get("/v1/nothing").json()["error"]["type"] == "not_found_error"
    assert client.get("/api/nothing").status_code == 404
    assert client.get("/api/chat").status_code == 405
    assert "error" in client.get("/api/chat").json()


def test_metrics_count_requests_and_tokens(client: TestClient) -> None:
    client.post("/api/generate", json={"model": "fake", "prompt": "x", "stream": False})
    client.get("/nothing/here/1")
    text = client.get("/metrics").text
    assert 'hearth_http_requests_total{method="POST",route="/api/generate",status="200"} 1' in text
    assert 'route="other",status="404"' in text and "/nothing" not in text
    for i in range(3):  # made-up methods and model names do not make new label series
        client.request(f"FOO{i}", "/api/tags")
        client.get(f"/v1/models/made-up-{i}")
    text = client.get("/metrics").text
    assert "FOO" not in text and "made-up" not in text
    assert 'method="other",route="/api/tags"' in text and 'route="/v1/models/{model:path}",status="404"} 3' in text
    assert 'hearth_tokens_total{kind="completion"} 6' in text
    assert 'hearth_generations_total{reason="stop"} 1' in text
    for name in ("hearth_queue_depth", "hearth_models_loaded", "hearth_generations_in_flight"):
        assert f"\n{name} " in text


def test_api_errors_do_not_spell_out_this_machines_paths(client: TestClient, fake: FakeHearth) -> None:
    from hearth.errors import StoreError
    from hearth.paths import hearth_home

    fake.fail = StoreError(f"cannot read {hearth_home()}/blobs/sha256-ab: permission denied",
                           hint=f"check {Path.home()}/.config")
    body = client.post("/api/chat", json={"model": "fake", "messages": [{"role": "user", "content": "hi"}],
                                          "stream": False}).json()
    assert str(hearth_home()) not in str(body) and str(Path.home()) not in str(body)
    assert "$HEARTH_HOME/blobs/sha256-ab" in body["error"] and "~/.config" in body["hint"]


@pytest.mark.parametrize("stream", [False, True])
def test_a_bad_conversation_id_is_refused_before_any_answer(client: TestClient, fake: FakeHearth,
                                                            stream: bool) -> None:
    for route, body in (("/v1/chat/completions", {"model": "fake", "messages": [{"role": "user", "content": "hi"}]}),
                        ("/api/chat", {"model": "fake", "messages": [{"role": "user", "content": "hi"}]})):
        for bad in ("a:b", "x" * 65, "../etc", 7):
            response = client.post(route, json={**body, "stream": stream, "conversation_id": bad})
            assert response.status_code == 400 and "conversation" in response.text, (route, bad)
    assert fake.calls == []  # nothing was generated
