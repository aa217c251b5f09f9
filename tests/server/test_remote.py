"""Remote engines against a real second `hearth serve` on loopback (both of its APIs): registration, streamed and
whole answers equal to the remote's own, tool calls and JSON schemas passed through, the remote's refusals as
Hearth's typed errors, a remote that dies mid-answer, the history and the local server relaying it."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from hearth.config import Settings
from hearth.errors import InvalidRequestError, NotFoundError, RemoteAuthError, RemoteError
from hearth.options import parse_options
from hearth.remote import Registry, Remote
from hearth.server import create_app
from hearth.service import Hearth, Turn, schema_grammar
from hearth.store import ModelStore
from hearth.types import Done, Message, TextChunk, ToolCallEvent
from tests.conftest import HEARTH, cli_env
from tests.server.conftest import MODEL, ServerProcess, free_port

QUESTION = [Message("user", "What is the capital of France? Answer in one word.")]
GREEDY = {"temperature": 0, "num_predict": 12}
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                            "parameters": {"type": "object", "properties": {
                                                "city": {"type": "string"}}, "required": ["city"]}}}


@pytest.fixture
def local(tmp_path: Path, live: ServerProcess) -> Iterator[Hearth]:
    """A Hearth of its own (its own HEARTH_HOME) with `box` (OpenAI API) and `obox` (Ollama API) at `live`."""
    hearth = Hearth(Settings(num_parallel=1, history=False), store=ModelStore(tmp_path / "home"))
    hearth.remote_add("box", live.url, model=MODEL)
    hearth.remote_add("obox", live.url, model=MODEL, api="ollama")
    yield hearth
    hearth.close()


def remote_answer(live: ServerProcess) -> str:
    """The remote's own greedy answer to QUESTION."""
    body = {"model": MODEL, "stream": False, "options": GREEDY,
            "messages": [{"role": "user", "content": QUESTION[0].content}]}
    return str(httpx.post(live.url + "/api/chat", json=body, timeout=120).json()["message"]["content"])


@pytest.mark.parametrize("name", ["box", "obox"])
def test_a_remote_streams_the_remotes_own_answer(local: Hearth, live: ServerProcess, name: str) -> None:
    events = list(local.chat(name, QUESTION, parse_options(GREEDY)))
    text = "".join(e.text for e in events if isinstance(e, TextChunk))
    assert len([e for e in events if isinstance(e, TextChunk)]) > 1  # token by token, not one lump
    done = events[-1]
    assert isinstance(done, Done) and done.reason in ("stop", "length")
    assert done.stats.completion_tokens > 0 and done.stats.prompt_tokens > 0 and done.stats.total_ns > 0
    assert text == remote_answer(live) and "Paris" in text


def test_a_request_never_read_is_let_go(local: Hearth) -> None:
    from hearth import egress

    generation = local.chat("box", QUESTION, parse_options(GREEDY))
    generation.close()  # a client that left before its answer started
    assert [a.what for a in egress._STATE.activities] == []  # its egress-log purpose is closed
    assert "Paris" in local.chat("box", QUESTION, parse_options(GREEDY)).text()


def test_registration_checks_the_model_and_lists_what_a_server_offers(local: Hearth, live: ServerProcess) -> None:
    models, kind = local.remote_offered(live.url)
    assert MODEL in models and kind == "hearth"
    with pytest.raises(InvalidRequestError) as caught:
        local.remote_add("nope", live.url, model="no-such-model")
    assert "does not offer 'no-such-model'" in caught.value.message
    assert [r.name for r in local.remote_list()] == ["box:latest", "obox:latest"]
    stored = json.loads((local.store.home / "remotes.json").read_text())
    assert oct((local.store.home / "remotes.json").stat().st_mode & 0o777) == "0o600"
    assert stored["remotes"]["box:latest"]["server"] == "hearth"


def test_a_forced_tool_call_comes_back_as_a_tool_call(local: Hearth) -> None:
    ask = [Message("user", "What is the weather in Paris?")]
    options = parse_options({"temperature": 0, "num_predict": 64})
    generation = local.chat("box", ask, options, turn=Turn(tools=[WEATHER], tool_choice="required"))
    calls = [e.call for e in generation if isinstance(e, ToolCallEvent)]
    assert [c.name for c in calls] == ["get_weather"] and isinstance(calls[0].arguments.get("city"), str)
    with pytest.raises(InvalidRequestError) as caught:  # Ollama's API has no tool_choice: said, not ignored
        local.chat("obox", ask, options, turn=Turn(tools=[WEATHER], tool_choice="required"))
    assert caught.value.field == "tool_choice"


@pytest.mark.parametrize("name", ["box", "obox"])
def test_a_json_schema_is_passed_through(local: Hearth, name: str) -> None:
    schema = {"type": "object", "properties": {"capital": {"type": "string", "maxLength": 20}},
              "required": ["capital"]}
    options = parse_options({"temperature": 0, "num_predict": 48}).with_(grammar=schema_grammar(schema))
    answer = json.loads(local.chat(name, QUESTION, options).text())
    assert set(answer) == {"capital"} and isinstance(answer["capital"], str)


def test_the_remotes_refusals_are_typed_errors_naming_it(local: Hearth, live: ServerProcess) -> None:
    Registry(local.store.home).add(Remote("ghost", live.url, "openai", "no-such-model", "hearth"))
    with pytest.raises(NotFoundError) as missing:
        local.chat("ghost", QUESTION, parse_options(GREEDY))
    assert "ghost" in missing.value.message and "no-such-model" in missing.value.message
    Registry(local.store.home).add(Remote("gone", f"http://127.0.0.1:{free_port()}", "openai", MODEL))
    with pytest.raises(RemoteError) as unreachable:
        local.chat("gone", QUESTION, parse_options(GREEDY))
    assert "could not reach the remote model gone" in unreachable.value.message
    with pytest.raises(InvalidRequestError):  # a hand-written grammar to a server that takes none that way
        local.chat("box", QUESTION, parse_options(GREEDY).with_(grammar='root ::= "yes"'))
    with pytest.raises(InvalidRequestError):
        local.count_tokens("box", QUESTION)
    with pytest.raises(InvalidRequestError) as persona:  # a LoRA needs local weights: said, naming the line
        local.create("terse", "FROM box\nSYSTEM Answer in one word.\nADAPTER ./lora.gguf\n")
    assert "line 3" in persona.value.message and "ADAPTER needs local weights" in persona.value.message


def test_a_wrong_key_is_refused_by_the_remote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    guarded = ServerProcess(tmp_path, "--num-ctx", "512", env={"HEARTH_API_KEY": "right-key-123456"})
    hearth = Hearth(Settings(num_parallel=1, history=False), store=ModelStore(tmp_path / "home"))
    try:
        monkeypatch.setenv("BOX_KEY", "right-key-123456")
        hearth.remote_add("keyed", guarded.url, model=MODEL, key_env="BOX_KEY")
        assert "Paris" in hearth.chat("keyed", QUESTION, parse_options(GREEDY)).text()
        monkeypatch.setenv("BOX_KEY", "wrong-key")
        with pytest.raises(RemoteAuthError) as caught:
            hearth.chat("keyed", QUESTION, parse_options(GREEDY))
        assert "HTTP 401" in caught.value.message and "$BOX_KEY" in (caught.value.hint or "")
        assert "right-key" not in (tmp_path / "home" / "remotes.json").read_text()
    finally:
        hearth.close()
        guarded.stop()


def test_a_remote_that_dies_mid_answer_ends_it_with_an_error(tmp_path: Path) -> None:
    doomed = ServerProcess(tmp_path, "--num-ctx", "512")
    hearth = Hearth(Settings(num_parallel=1, history=False), store=ModelStore(tmp_path / "home"))
    try:
        hearth.remote_add("doomed", doomed.url, model=MODEL)
        generation = hearth.chat("doomed", [Message("user", "Count from one to one hundred in words.")],
                                 parse_options({"temperature": 0, "num_predict": 400}))
        events = iter(generation)
        first = next(e for e in events if isinstance(e, TextChunk))
        assert first.text
        doomed.proc.kill()
        rest = list(events)
        assert isinstance(rest[-1], Done) and rest[-1].reason == "error"
        assert "doomed" in (rest[-1].error or "")
        assert generation.done is not None and generation.done.reason == "error" and generation.remote
        with pytest.raises(RemoteError):  # and the next request says the remote is gone
            hearth.chat("doomed", QUESTION, parse_options(GREEDY))
    finally:
        hearth.close()
        doomed.stop()


def test_the_local_server_relays_a_remote_and_lists_it(local: Hearth, live: ServerProcess) -> None:
    with TestClient(create_app(local, Settings()), base_url="http://127.0.0.1:11435",
                    client=("127.0.0.1", 50000)) as client:
        tags = client.get("/api/tags").json()["models"]
        assert {"name": "box:latest", "remote_host": live.url, "remote_model": MODEL}.items() <= next(
            m for m in tags if m["name"] == "box:latest").items()
        assert "box:latest" in [m["id"] for m in client.get("/v1/models").json()["data"]]
        answer = client.post("/v1/chat/completions", json={
            "model": "box", "temperature": 0, "max_tokens": 12,
            "messages": [{"role": "user", "content": QUESTION[0].content}]})
        assert answer.status_code == 200 and "Paris" in answer.json()["choices"][0]["message"]["content"]
        streamed = client.post("/api/chat", json={"model": "obox", "options": GREEDY, "messages": [
            {"role": "user", "content": QUESTION[0].content}]})
        lines = [json.loads(line) for line in streamed.text.splitlines() if line.strip()]
        assert len(lines) > 2 and lines[-1]["done"] is True and "Paris" in "".join(
            line["message"]["content"] for line in lines)
        gone = client.post("/v1/chat/completions", json={"model": "ghost-not-registered", "messages": [
            {"role": "user", "content": "hi"}]})
        assert gone.status_code == 404


def test_the_cli_records_where_it_ran_and_offline_mode_refuses(tmp_path: Path, live: ServerProcess) -> None:
    env = cli_env(tmp_path)
    added = subprocess.run([HEARTH, "remote", "add", "box", live.url, "--model", MODEL], env=env,
                           capture_output=True, text=True, timeout=60)
    assert added.returncode == 0, added.stderr
    listed = subprocess.run([HEARTH, "list"], env=env, capture_output=True, text=True, timeout=60).stdout
    assert "box:latest" in listed and live.url in listed and "prompts go there" in listed
    run = subprocess.run([HEARTH, "run", "box", QUESTION[0].content, "-o", "temperature=0", "--json"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "Paris" in json.loads(run.stdout)["response"]
    conversations = subprocess.run([HEARTH, "history", "list", "--json"], env=env, capture_output=True, text=True,
                                   timeout=60)
    latest = json.loads(conversations.stdout)[0]["id"]
    shown = subprocess.run([HEARTH, "history", "export", latest, "--format", "json"], env=env,
                           capture_output=True, text=True, timeout=60)
    assert live.url in shown.stdout, shown.stderr
    offline = subprocess.run([HEARTH, "run", "box", "hi"], env={**env, "HEARTH_OFFLINE": "1"},
                             capture_output=True, text=True, timeout=60)
    assert offline.returncode == 1 and "needs the network, and offline mode is on" in offline.stderr
    privacy = subprocess.run([HEARTH, "privacy", "--json"], env={**env, "HEARTH_PORT": str(free_port())},
                             capture_output=True, text=True, timeout=60)
    assert any(live.url in r for r in json.loads(privacy.stdout)["remote_engines"])
    log = [json.loads(line) for line in (tmp_path / "egress.log").read_text().splitlines()]
    assert any(e["purpose"] == "remote box:latest" and e["event"] == "done" for e in log)
    assert os.environ.get("HEARTH_OFFLINE") is None


PERSONA = '''FROM box
SYSTEM You are a pirate. Start every answer with "Arr".
PARAMETER num_predict 6
PARAMETER temperature 0
MESSAGE user Who are you?
MESSAGE assistant Arr, a pirate of the seven seas.
'''


def test_a_persona_from_a_remote_model_sends_its_prompt_turns_and_defaults(local: Hearth, live: ServerProcess) -> None:
    created = local.create("pirate", PERSONA)
    assert created.manifest is None and created.name == "pirate:latest" and not created.replaced
    assert created.origin == f"box:latest (remote: {MODEL} at {live.url})"
    persona = local.remote("pirate")
    assert persona is not None and persona.base == "box:latest" and persona.parameters == {"num_predict": 6,
                                                                                           "temperature": 0}
    answer = local.chat("pirate", QUESTION).text()
    expected = httpx.post(live.url + "/api/chat", timeout=120, json={
        "model": MODEL, "stream": False, "options": {"num_predict": 6, "temperature": 0}, "messages": [
            {"role": "system", "content": 'You are a pirate. Start every answer with "Arr".'},
            {"role": "user", "content": "Who are you?"},
            {"role": "assistant", "content": "Arr, a pirate of the seven seas."},
            {"role": "user", "content": QUESTION[0].content}]}).json()["message"]["content"]
    assert answer == expected  # the remote saw the persona's system prompt, seed turns and defaults
    longer = local.chat("pirate", QUESTION, parse_options({"num_predict": 12, "temperature": 0})).text()
    assert longer.startswith(answer) and len(longer) > len(answer)  # the request's options win
    again = local.create("pirate", PERSONA.replace("num_predict 6", "num_predict 4"))
    assert again.replaced and local.remote("pirate").parameters["num_predict"] == 4  # type: ignore[union-attr]
    assert "pirate:latest" in [r.name for r in local.remote_list()]


@pytest.mark.parametrize(("extra", "line", "words"), [
    ("TEMPLATE {{ .Prompt }}\n", 3, "TEMPLATE cannot apply to a remote model"),
    ("ADAPTER ./lora.gguf\n", 3, "ADAPTER needs local weights"),
    ("PARAMETER temperature hot\n", 3, "temperature"),
])
def test_a_remote_persona_refuses_what_only_local_weights_take(local: Hearth, extra: str, line: int,
                                                              words: str) -> None:
    from hearth.modelfile import ModelfileError

    with pytest.raises((ModelfileError, InvalidRequestError)) as caught:
        local.create("bad", f"FROM box\nSYSTEM hi\n{extra}")
    assert words in caught.value.message
    if isinstance(caught.value, ModelfileError):
        assert caught.value.line == line
    assert local.remote("bad") is None


def test_hearth_ps_lists_a_remote_in_use(tmp_path: Path, live: ServerProcess) -> None:
    home = tmp_path / "home"
    env = cli_env(home)
    subprocess.run([HEARTH, "remote", "add", "box", live.url, "--model", MODEL], env=env, check=True,
                   capture_output=True, timeout=60)
    relay = ServerProcess(home)
    try:
        assert [m for m in relay.ps() if m.get("remote_host")] == []  # not used yet: nothing to list
        chat = {"model": "box", "messages": [{"role": "user", "content": "Hi"}], "stream": False,
                "options": {"num_predict": 4}}
        assert httpx.post(relay.url + "/api/chat", json=chat, timeout=120).status_code == 200
        (entry,) = [m for m in relay.ps() if m.get("remote_host")]
        assert (entry["name"], entry["remote_model"], entry["remote_host"], entry["in_flight"]) == (
            "box:latest", MODEL, live.url, 0)
        printed = subprocess.run([HEARTH, "ps"],
                                 env={**env, "HEARTH_PORT": str(relay.port)}, capture_output=True, text=True,
                                 check=True, timeout=60).stdout
        assert "box:latest" in printed and "remote" in printed and f"{MODEL} at {live.url}" in printed
    finally:
        relay.stop()


def test_a_remote_model_answers_from_documents(local: Hearth, live: ServerProcess, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("The lighthouse on Gull Island was built in 1874 and painted red.\n")
    local.documents.add("island", [notes])
    question = [Message("user", "When was the lighthouse on Gull Island built?")]
    grounded = local.ground("box", question, "island")
    assert "1874" in grounded.messages[-1].content  # the passage went into what the remote is sent
    cited, generation = local.answer_with_documents("box", question, "island", parse_options(GREEDY))
    assert generation.remote and generation.model == "box:latest"
    assert [s.path for s in cited.sources] == [str(notes)]
    expected = httpx.post(live.url + "/api/chat", timeout=120, json={
        "model": MODEL, "stream": False, "options": GREEDY,
        "messages": [{"role": m.role, "content": m.content} for m in grounded.messages]}).json()["message"]["content"]
    assert cited.text == grounded.cite(expected).text  # the remote's own answer to the grounded question
