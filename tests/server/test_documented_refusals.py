"""docs/api.md tells one story: every parameter it lists as refused is refused by the server, naming it.

The sentence "Parameters this server cannot honour are refused with 400 naming them ..." is read from the
docs; each backticked name in it needs a probe here, and each probe must get a 400 that names the field.
A parameter documented as refused that the server honours (the docs once listed `tools` there while the
Tools section documented them) fails the probe; one documented without a probe fails the first test.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]
SENTENCE = re.compile(r"Parameters this server\s+cannot honour are refused with 400 naming them, rather than ignored:"
                      r"(?P<list>.*?)\. ", re.S)
CHAT = {"model": "fake", "messages": [{"role": "user", "content": "hi"}]}
COMPLETION = {"model": "fake", "prompt": "hi"}
# name -> (route, body, text the error must name)
PROBES: dict[str, tuple[str, dict[str, Any], str]] = {
    "n": ("/v1/chat/completions", {**CHAT, "n": 2}, "n"),
    "logprobs": ("/v1/chat/completions", {**CHAT, "logprobs": True}, "logprobs"),
    "logit_bias": ("/v1/chat/completions", {**CHAT, "logit_bias": {"1": 5}}, "logit_bias"),
    "echo": ("/v1/completions", {**COMPLETION, "echo": True}, "echo"),
    "suffix": ("/v1/completions", {**COMPLETION, "suffix": "end"}, "suffix"),
    "best_of": ("/v1/completions", {**COMPLETION, "best_of": 2}, "best_of"),
    "dimensions": ("/v1/embeddings", {"model": "fake", "input": "hi", "dimensions": 8}, "dimensions"),
}


def refused_in_docs() -> list[str]:
    """The backticked names in docs/api.md's list of refused OpenAI parameters."""
    found = SENTENCE.search((ROOT / "docs" / "api.md").read_text(encoding="utf-8"))
    assert found, "docs/api.md no longer lists the parameters the server refuses"
    return [re.sub(r"\s*>.*", "", name) for name in re.findall(r"`([^`]+)`", found["list"])]


def test_every_documented_refusal_has_a_probe() -> None:
    assert sorted(refused_in_docs()) == sorted(PROBES)


@pytest.mark.parametrize("name", sorted(PROBES))
def test_a_documented_refusal_is_a_400_naming_the_field(name: str, client: TestClient) -> None:
    route, body, field = PROBES[name]
    response = client.post(route, json=body)
    assert response.status_code == 400, (name, response.text[:300])
    error = response.json()["error"]
    assert field in error["message"] or error.get("param") == field, error


def test_tools_are_documented_as_supported_and_work(client: TestClient) -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    assert "tools" not in refused_in_docs()
    assert client.post("/v1/chat/completions", json={**CHAT, "tools": [tool]}).status_code == 200
