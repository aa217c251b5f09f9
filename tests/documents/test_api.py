"""The APIs: `"documents": "NAME"` on OpenAI's and Ollama's chat, sources in the answer, the collection routes.

The real service and engine (SmolLM2 answering under a grammar, so the citations are known) behind the app.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from hearth.config import Settings
from hearth.server import create_app
from hearth.service import Hearth
from tests.documents.conftest import CHAT_MODEL
from tests.documents.files import write_pdf

GRAMMAR = 'root ::= "A sloop has one mast [1][4]."'
SCHEMA = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {  # OpenAI's way to constrain
    "type": "object", "properties": {"answer": {"enum": ["One mast [1][4]."]}}, "required": ["answer"]}}}
QUESTION = [{"role": "user", "content": "How many masts does a sloop have?"}]


@pytest.fixture(scope="module")
def client(docs_hearth: Hearth, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    folder = tmp_path_factory.mktemp("boats")
    write_pdf(folder / "boats.pdf", ["Boats of the harbour.", "A sloop has a single mast and a jib."])
    (folder / "kites.txt").write_text("Kites need wind.", encoding="utf-8")
    docs_hearth.documents.add("boats", [folder])
    with TestClient(create_app(docs_hearth, Settings()), base_url="http://127.0.0.1:11435",
                    client=("127.0.0.1", 50000)) as test_client:
        yield test_client


def check_sources(sources: list[dict[str, object]]) -> None:
    assert sources[0]["number"] == 1 and sources[0]["cited"] is True and sources[0]["page"] == 2
    assert str(sources[0]["path"]).endswith("boats.pdf") and "single mast" in str(sources[0]["text"])
    assert not any(s["cited"] for s in sources[1:])


def test_openai_chat_answers_from_a_collection(client: TestClient) -> None:
    body = {"model": CHAT_MODEL, "messages": QUESTION, "documents": "boats", "response_format": SCHEMA}
    reply = client.post("/v1/chat/completions", json=body)
    assert reply.status_code == 200, reply.text
    data = reply.json()
    assert json.loads(data["choices"][0]["message"]["content"]) == {"answer": "One mast [1]."}
    check_sources(data["sources"])


def test_openai_stream_drops_invented_citations_and_ends_with_the_sources(client: TestClient) -> None:
    body = {"model": CHAT_MODEL, "messages": QUESTION, "documents": "boats", "stream": True, "response_format": SCHEMA}
    with client.stream("POST", "/v1/chat/completions", json=body) as reply:
        events = [json.loads(line[6:]) for line in reply.iter_lines() if line.startswith("data: {")]
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events if e["choices"])
    assert json.loads(text) == {"answer": "One mast [1]."}
    [final] = [e for e in events if "sources" in e]
    assert final["choices"][0]["finish_reason"] == "stop"
    check_sources(final["sources"])


def test_ollama_chat_answers_from_a_collection(client: TestClient) -> None:
    body = {"model": CHAT_MODEL, "messages": QUESTION, "documents": "boats", "options": {"grammar": GRAMMAR}}
    with client.stream("POST", "/api/chat", json=body) as reply:
        lines = [json.loads(line) for line in reply.iter_lines() if line]
    assert "".join(line["message"]["content"] for line in lines) == "A sloop has one mast [1]."
    assert lines[-1]["done"] is True
    check_sources(lines[-1]["sources"])
    whole = client.post("/api/chat", json={**body, "stream": False}).json()
    assert whole["message"]["content"] == "A sloop has one mast [1]."
    check_sources(whole["sources"])


def test_collection_routes_and_clean_errors(client: TestClient) -> None:
    assert "boats" in [c["name"] for c in client.get("/api/documents").json()["collections"]]
    shown = client.get("/api/documents/boats").json()
    assert shown["files"] == 2 and {Path(f["path"]).name for f in shown["file_list"]} == {"boats.pdf", "kites.txt"}
    found = client.post("/api/documents/boats/search", json={"query": "sloop mast"}).json()
    assert found["passages"][0]["page"] == 2
    missing = client.post("/v1/chat/completions", json={"model": CHAT_MODEL, "messages": QUESTION,
                                                         "documents": "nothing"})
    assert missing.status_code == 404 and "no document collection named 'nothing'" in missing.text
    bad = client.post("/api/chat", json={"model": CHAT_MODEL, "messages": QUESTION, "documents": 5,
                                         "stream": False})
    assert bad.status_code == 400 and "documents" in bad.text
