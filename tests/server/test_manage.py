"""`POST /api/pull` and `POST /api/create` on a live server, through the official ollama client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import ollama
import pytest

from tests.hub.conftest import FILE, REPO
from tests.hub.fakehub import TOKEN, FakeHub
from tests.server.conftest import ServerProcess


@pytest.fixture(scope="module")
def hub_server(tmp_path_factory: pytest.TempPathFactory,
               bundled_model: Path) -> Iterator[tuple[FakeHub, ServerProcess]]:
    hub = FakeHub().start()
    hub.add_repo(REPO, {FILE: bundled_model})
    home = tmp_path_factory.mktemp("manage-home")
    env = {"HF_ENDPOINT": hub.url, "HF_TOKEN": TOKEN, "HF_HOME": str(home / "hf"), "HF_HUB_DISABLE_TELEMETRY": "1",
           "HEARTH_DOWNLOAD_HOSTS": hub.cdn_url}
    server = ServerProcess(home, "--num-ctx", "1024", "--num-parallel", "1", env=env)
    yield hub, server
    server.stop()
    hub.stop()


def test_pull_streams_ollama_progress_then_the_model_chats(hub_server: tuple[FakeHub, ServerProcess]) -> None:
    _, server = hub_server
    client = ollama.Client(host=server.url)
    name = f"hf.co/{REPO}:Q4_1"
    updates = list(client.pull(name, stream=True))
    statuses = [u.status for u in updates]
    assert statuses[0] == "pulling manifest" and statuses[-1] == "success"
    assert any(u.total and u.completed == u.total for u in updates)
    assert "verifying sha256 digest" in statuses
    names = [m.model for m in client.list().models]
    assert any(n and n.startswith(f"hf.co/{REPO.lower()}") for n in names), names
    reply = client.chat(model=name, messages=[{"role": "user", "content": "What is the capital of France? "
                                               "Answer in one word."}], options={"temperature": 0})
    assert "Paris" in reply.message.content


def test_pull_errors_are_clean(hub_server: tuple[FakeHub, ServerProcess]) -> None:
    _, server = hub_server
    response = httpx.post(server.url + "/api/pull", json={"model": "hf.co/Nobody/Nothing-GGUF"}, timeout=60)
    assert response.status_code == 200  # the stream started: the error is in-band
    assert "error" in response.text.splitlines()[-1]
    bad = httpx.post(server.url + "/api/pull", json={"model": "../../etc/passwd", "stream": False}, timeout=60)
    assert 400 <= bad.status_code < 500
    assert httpx.post(server.url + "/api/pull", json={}, timeout=10).status_code == 400
    assert server.healthy()


def test_create_a_persona_and_chat_with_it(hub_server: tuple[FakeHub, ServerProcess]) -> None:
    _, server = hub_server
    client = ollama.Client(host=server.url)
    result = client.create(model="terse", from_="smollm2:135m", system="Answer in one word.",
                           parameters={"temperature": 0, "num_predict": 5})
    assert result.status == "success"
    shown = client.show("terse")
    assert "Answer in one word." in (shown.modelfile or "")
    reply = client.generate(model="terse", prompt="Tell me a long story.")
    assert reply.eval_count <= 5


def test_create_refuses_bad_input(hub_server: tuple[FakeHub, ServerProcess]) -> None:
    _, server = hub_server
    url = server.url + "/api/create"
    assert httpx.post(url, json={"model": "x"}, timeout=10).status_code == 400
    assert httpx.post(url, json={"model": "x", "from": "missing:model"}, timeout=10).status_code == 404
    bad_file = httpx.post(url, json={"model": "x", "modelfile": "FROM smollm2:135m\nPARAMETER temperature hot\n"},
                          timeout=10)
    assert bad_file.status_code == 400 and "line 2" in bad_file.text
    path = httpx.post(url, json={"model": "x", "modelfile": "FROM /etc/passwd\n"}, timeout=10)
    assert path.status_code == 400
    assert server.healthy()


def test_structured_create_takes_values_as_values(hub_server: tuple[FakeHub, ServerProcess]) -> None:
    _, server = hub_server
    url = server.url + "/api/create"
    tricky = 'Quote """this""" and never\nADAPTER /etc/passwd'
    made = httpx.post(url, json={"model": "quoter", "from": "smollm2:135m", "system": tricky,
                                 "parameters": {"stop": ["###", "END"], "temperature": 0.3},
                                 "messages": [{"role": "user", "content": 'say """hi"""'}], "stream": False},
                      timeout=60)
    assert made.status_code == 200, made.text
    shown = httpx.post(server.url + "/api/show", json={"model": "quoter"}, timeout=10).json()
    assert shown["system"] == tricky  # one system prompt, not an ADAPTER line
    assert "/etc/passwd" not in shown["modelfile"].replace(tricky, "")
    assert 'stop                           "###"' in shown["parameters"] and "0.3" in shown["parameters"]
    for body, field in (({"parameters": {"temperature": "hot"}}, "parameters.temperature"),
                        ({"parameters": {"nope": 1}}, "parameters.nope"),
                        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0]"),
                        ({"messages": ["x"]}, "messages[0]")):
        refused = httpx.post(url, json={"model": "bad", "from": "smollm2:135m", **body}, timeout=10)
        assert refused.status_code == 400 and field in refused.text, (body, refused.text)
    assert httpx.post(server.url + "/api/show", json={"model": "bad"}, timeout=10).status_code == 404


HOSTILE_TEMPLATES = [
    "{% set s = namespace(v='xxxxxxxx') %}{% for i in range(34) %}{% set s.v = s.v ~ s.v %}{% endfor %}{{ s.v }}",
    "{{ '%200000000s'|format('') }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{{ messages|tojson(indent=100000000) }}",
]


def test_hostile_templates_are_refused_at_create_without_growing_the_server(
        hub_server: tuple[FakeHub, ServerProcess]) -> None:
    import psutil

    _, server = hub_server
    process = psutil.Process(server.proc.pid)
    before = process.memory_info().rss
    for template in HOSTILE_TEMPLATES:
        response = httpx.post(server.url + "/api/create", json={"model": "hostile", "from": "smollm2:135m",
                                                                "template": template}, timeout=30)
        assert response.status_code == 400, response.text
        assert "template" in response.text.lower()
    assert process.memory_info().rss - before < 64 << 20
    assert httpx.post(server.url + "/api/show", json={"model": "hostile"}, timeout=10).status_code == 404
    assert server.healthy()
