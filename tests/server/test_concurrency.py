"""Several clients at once, a full queue, a killed worker and a vanished client, on live servers."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import ollama
import openai
import pytest

from tests.server.conftest import MODEL, ServerProcess, wait_for

QUESTIONS = ["What is the capital of France?", "Name a primary color.", "What do bees make?",
             "How many legs does a spider have?"]
COUNTING = ", ".join(str(i) for i in range(1, 21)) + ","  # greedy, unpenalised: the model counts on and on
LONG = {"temperature": 0, "repeat_penalty": 1.0, "num_predict": 2000}


def _chat_alone(url: str, question: str) -> str:
    client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=120)
    reply = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": question}],
                                           max_tokens=24, temperature=0, seed=42)
    return reply.choices[0].message.content or ""


def _chat_streamed(url: str, question: str, barrier: threading.Barrier) -> str:
    client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=120)
    barrier.wait()
    stream = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": question}],
                                            max_tokens=24, temperature=0, seed=42, stream=True)
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def test_four_concurrent_streams_match_their_solo_answers(live: ServerProcess) -> None:
    alone = [_chat_alone(live.url, q) for q in QUESTIONS]
    barrier = threading.Barrier(len(QUESTIONS))
    with ThreadPoolExecutor(len(QUESTIONS)) as pool:
        together = list(pool.map(lambda q: _chat_streamed(live.url, q, barrier), QUESTIONS))
    assert together == alone
    assert all(alone)


def _in_flight(server: ServerProcess) -> int:
    return sum(m["in_flight"] for m in server.ps())


def _open_stream(client: httpx.Client, path: str, body: dict[str, Any]) -> tuple[Any, Any]:
    """Start a streamed request and wait for its first line; returns (context manager, line iterator)."""
    cm = client.stream("POST", path, json=body)
    response = cm.__enter__()
    assert response.status_code == 200
    lines = response.iter_lines()
    first = next(line for line in lines if line.strip())
    assert first
    return cm, lines


def _long_generate(stream: bool = True) -> dict[str, Any]:
    return {"model": MODEL, "prompt": COUNTING, "raw": True, "stream": stream,
            "options": LONG}


def test_full_queue_answers_503_with_retry_after(narrow: ServerProcess) -> None:
    with httpx.Client(base_url=narrow.url, timeout=60) as client:
        running, _ = _open_stream(client, "/api/generate", _long_generate())
        queued = threading.Thread(target=lambda: client.post("/v1/completions", json={
            "model": MODEL, "prompt": "Hello", "max_tokens": 4}), daemon=True)
        queued.start()
        assert wait_for(lambda: _in_flight(narrow) == 2, timeout=10)
        started = time.monotonic()
        with httpx.Client(base_url=narrow.url, timeout=10) as other:
            busy_openai = other.post("/v1/chat/completions", json={"model": MODEL, "messages": [
                {"role": "user", "content": "hi"}], "stream": True})
            busy_ollama = other.post("/api/chat", json={"model": MODEL,
                                                        "messages": [{"role": "user", "content": "hi"}]})
            health = [other.get("/health") for _ in range(5)]
        assert time.monotonic() - started < 2
        assert busy_openai.status_code == 503 and busy_ollama.status_code == 503
        assert int(busy_openai.headers["retry-after"]) >= 1 and int(busy_ollama.headers["retry-after"]) >= 1
        assert busy_openai.json()["error"]["code"] == "server_busy"
        assert isinstance(busy_ollama.json()["error"], str)
        assert all(h.status_code == 200 for h in health)
        running.__exit__(None, None, None)  # hang up: the queued request gets the slot
        queued.join(30)
        assert not queued.is_alive()
    assert wait_for(lambda: _in_flight(narrow) == 0, timeout=5)


def test_disconnect_mid_stream_frees_the_slot(narrow: ServerProcess) -> None:
    def cancelled() -> int:
        text = httpx.get(narrow.url + "/metrics").text
        return int(next(line for line in text.splitlines() if 'reason="cancelled"' in line).split()[-1])

    before = cancelled()
    with httpx.Client(base_url=narrow.url, timeout=60) as client:
        for _ in range(3):
            cm, _ = _open_stream(client, "/v1/completions", {"model": MODEL, "prompt": COUNTING, "max_tokens": 2000,
                                                               "stream": True, "temperature": 0, "repeat_penalty": 1.0})
            cm.__exit__(None, None, None)
            # two seconds is the bar (security reference T20); one more is slack for a loaded CI machine
            assert wait_for(lambda: _in_flight(narrow) == 0, timeout=3)
    assert wait_for(lambda: cancelled() >= before + 3, timeout=2)
    # a non-streamed request whose client gives up is stopped too
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(narrow.url + "/api/generate", json=_long_generate(stream=False), timeout=1.5)
    assert wait_for(lambda: _in_flight(narrow) == 0, timeout=2)
    assert wait_for(lambda: 'route="/api/generate",status="499"' in httpx.get(narrow.url + "/metrics").text)
    started = time.monotonic()
    reply = httpx.post(narrow.url + "/api/generate", json={"model": MODEL, "prompt": "hi", "stream": False,
                                                           "options": {"num_predict": 1}}, timeout=30)
    assert reply.status_code == 200 and time.monotonic() - started < 5


def _kill_worker(server: ServerProcess) -> int:
    pid = next(m["pid"] for m in server.ps() if m["name"] == MODEL)
    os.kill(pid, signal.SIGKILL)
    return int(pid)


def test_killing_the_worker_mid_stream_ends_with_an_error_event(narrow: ServerProcess) -> None:
    ol = ollama.Client(host=narrow.url, timeout=60)
    stream = ol.generate(model=MODEL, prompt=COUNTING, raw=True, stream=True, options=LONG)
    parts = [next(stream), next(stream)]
    killed = _kill_worker(narrow)
    with pytest.raises(ollama.ResponseError, match="worker"):
        for part in stream:
            parts.append(part)
    assert not any(p.done for p in parts)
    assert narrow.healthy()
    again = ol.generate(model=MODEL, prompt="hi", options={"num_predict": 2})
    assert again.done
    assert next(m["pid"] for m in narrow.ps() if m["name"] == MODEL) != killed
    line = f"model worker (pid {killed}) was killed by SIGKILL"
    deadline = time.monotonic() + 10  # logged once the answers have been told, when the exit code is read
    while line not in narrow.log.read_text(errors="replace") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert line in narrow.log.read_text(errors="replace")

    oa = openai.OpenAI(base_url=narrow.url + "/v1", api_key="x", max_retries=0, timeout=60)
    chunks = oa.completions.create(model=MODEL, prompt=COUNTING, max_tokens=2000, stream=True, temperature=0,
                                   extra_body={"repeat_penalty": 1.0})
    next(iter(chunks))
    _kill_worker(narrow)
    with pytest.raises(openai.APIError, match="worker"):
        for _ in chunks:
            pass
    assert oa.completions.create(model=MODEL, prompt="hi", max_tokens=2).choices[0].text is not None
    assert wait_for(lambda: _in_flight(narrow) == 0, timeout=5)


def test_killing_the_worker_during_a_whole_answer_is_503(narrow: ServerProcess) -> None:
    httpx.post(narrow.url + "/api/generate", json={"model": MODEL, "prompt": "hi", "options": {"num_predict": 1}},
               timeout=30)
    result: dict[str, httpx.Response] = {}
    thread = threading.Thread(target=lambda: result.setdefault("r", httpx.post(
        narrow.url + "/api/generate", json=_long_generate(stream=False), timeout=60)))
    thread.start()
    assert wait_for(lambda: _in_flight(narrow) == 1, timeout=10)
    time.sleep(0.3)
    _kill_worker(narrow)
    thread.join(30)
    response = result["r"]
    assert response.status_code == 503
    assert "worker" in json.loads(response.text)["error"]
    assert narrow.healthy()


def test_keep_alive_zero_and_seconds_unload_the_model(narrow: ServerProcess) -> None:
    body = {"model": MODEL, "prompt": "hi", "stream": False, "options": {"num_predict": 1}}
    assert httpx.post(narrow.url + "/api/generate", json={**body, "keep_alive": 0}, timeout=60).status_code == 200
    assert wait_for(lambda: narrow.ps() == [], timeout=3)
    assert httpx.post(narrow.url + "/api/generate", json={**body, "keep_alive": "2s"}, timeout=60).status_code == 200
    assert narrow.ps() != []
    assert wait_for(lambda: narrow.ps() == [], timeout=6)
    httpx.post(narrow.url + "/api/generate", json={**body, "keep_alive": -1}, timeout=60)
    assert narrow.ps()[0]["keep_alive"] == -1


def test_a_model_over_the_memory_budget_is_refused_with_507(server_home: Path) -> None:
    server = ServerProcess(server_home, "--memory-budget", "50000000")
    try:
        openai_reply = httpx.post(server.url + "/v1/chat/completions", json={
            "model": MODEL, "messages": [{"role": "user", "content": "hi"}]}, timeout=30)
        assert openai_reply.status_code == 507
        assert "memory budget" in openai_reply.json()["error"]["message"]
        ollama_reply = httpx.post(server.url + "/api/generate", json={"model": MODEL, "prompt": "hi"}, timeout=30)
        assert ollama_reply.status_code == 507 and "memory budget" in ollama_reply.json()["error"]
        assert server.ps() == [] and server.healthy()
    finally:
        server.stop()
