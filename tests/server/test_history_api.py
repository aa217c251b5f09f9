"""API calls that pass a `conversation_id` are recorded in the history, on both protocols."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from tests.conftest import HEARTH, cli_env
from tests.server.conftest import MODEL, ServerProcess


def _show(home: Path, cid: str) -> str:
    result = subprocess.run([HEARTH, "history", "show", cid], capture_output=True, text=True,
                            env=cli_env(home), timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_openai_and_ollama_exchanges_are_recorded(live: ServerProcess, server_home: Path) -> None:
    messages = [{"role": "user", "content": "Say the word zebra-kiwi once."}]
    first = httpx.post(live.url + "/v1/chat/completions", timeout=120, json={
        "model": MODEL, "messages": messages, "max_tokens": 12, "temperature": 0, "conversation_id": "api-conv-1"})
    assert first.status_code == 200
    answer = first.json()["choices"][0]["message"]["content"]
    messages += [{"role": "assistant", "content": answer}, {"role": "user", "content": "Thanks, platypus-lime."}]
    with httpx.stream("POST", live.url + "/api/chat", timeout=120, json={
            "model": MODEL, "messages": messages, "options": {"num_predict": 8, "temperature": 0},
            "conversation_id": "api-conv-1"}) as response:
        assert response.status_code == 200
        list(response.iter_lines())
    shown = _show(server_home, "api-conv-1")
    assert "zebra-kiwi" in shown and "platypus-lime" in shown and answer.strip()[:10] in shown


def test_rewriting_the_recorded_past_is_409_and_a_bad_id_400(live: ServerProcess) -> None:
    body = {"model": MODEL, "max_tokens": 4, "temperature": 0, "conversation_id": "api-conv-2",
            "messages": [{"role": "user", "content": "first question"}]}
    assert httpx.post(live.url + "/v1/chat/completions", json=body, timeout=120).status_code == 200
    body["messages"] = [{"role": "user", "content": "a different first question"}]
    assert httpx.post(live.url + "/v1/chat/completions", json=body, timeout=120).status_code == 409
    body["conversation_id"] = "../../etc"
    assert httpx.post(live.url + "/v1/chat/completions", json=body, timeout=120).status_code == 400
    assert live.healthy()
