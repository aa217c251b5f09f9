"""OpenAI's Responses API through the official `openai` SDK against a live server on the bundled model."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import HEARTH, cli_env
from tests.server.conftest import MODEL, ServerProcess

WEATHER = {"type": "function", "name": "get_weather", "description": "Current weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
CAPITAL = "What is the capital of France? Answer in one word."


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    home = tmp_path_factory.mktemp("responses-home")
    process = ServerProcess(home, "--num-ctx", "1024", "--num-parallel", "2")
    yield process
    process.stop()


def _client(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


def test_a_whole_response_with_usage(server: ServerProcess) -> None:
    reply = _client(server).responses.create(model=MODEL, input=CAPITAL, instructions="Be brief.", temperature=0,
                                             max_output_tokens=16)
    assert reply.object == "response" and reply.id.startswith("resp_") and reply.status == "completed"
    assert "Paris" in reply.output_text
    assert reply.output[0].type == "message" and reply.output[0].content[0].type == "output_text"
    assert reply.usage is not None and reply.usage.input_tokens > 10 and reply.usage.output_tokens > 0
    assert reply.usage.total_tokens == reply.usage.input_tokens + reply.usage.output_tokens


def test_a_streamed_response_has_ordered_events_and_the_same_text(server: ServerProcess) -> None:
    client = _client(server)
    events = list(client.responses.create(model=MODEL, input=CAPITAL, temperature=0, max_output_tokens=16,
                                          stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert "response.output_item.added" in kinds and "response.content_part.added" in kinds
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    done = next(e for e in events if e.type == "response.output_text.done")
    final = events[-1].response  # type: ignore[union-attr]
    assert deltas == done.text == final.output_text and "Paris" in deltas
    assert final.usage is not None and final.usage.output_tokens > 0


def test_max_output_tokens_makes_an_incomplete_response(server: ServerProcess) -> None:
    reply = _client(server).responses.create(model=MODEL, input="Count from one to twenty in words.",
                                             temperature=0, max_output_tokens=3)
    assert reply.status == "incomplete" and reply.incomplete_details is not None
    assert reply.incomplete_details.reason == "max_output_tokens" and reply.usage.output_tokens == 3


@pytest.mark.parametrize("stream", [False, True])
def test_a_required_call_is_schema_valid_and_a_round_trip_continues(server: ServerProcess, stream: bool) -> None:
    client = _client(server)
    ask: dict[str, Any] = {"model": MODEL, "input": "What is the weather in Paris?", "tools": [WEATHER],
                           "tool_choice": "required", "temperature": 0, "max_output_tokens": 64}
    if stream:
        events = list(client.responses.create(**ask, stream=True))
        reply = events[-1].response  # type: ignore[union-attr]
        assert "response.function_call_arguments.done" in [e.type for e in events]
    else:
        reply = client.responses.create(**ask)
    [call] = [item for item in reply.output if item.type == "function_call"]
    assert call.name == "get_weather" and isinstance(json.loads(call.arguments)["city"], str)
    after = client.responses.create(model=MODEL, previous_response_id=reply.id, temperature=0, max_output_tokens=24,
                                    tools=[WEATHER], input=[{"type": "function_call_output", "call_id": call.call_id,
                                            "output": '{"temperature_c": 21, "sky": "sunny"}'}])
    assert after.status in ("completed", "incomplete") and after.previous_response_id == reply.id
    assert after.usage.input_tokens > reply.usage.input_tokens  # the call and its result are in the prompt


def test_a_json_schema_answer_parses(server: ServerProcess) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
              "required": ["city", "country"], "additionalProperties": False}
    reply = _client(server).responses.create(
        model=MODEL, input="Name a city and its country as JSON.", temperature=0, max_output_tokens=64,
        text={"format": {"type": "json_schema", "name": "place", "schema": schema, "strict": True}})
    value = json.loads(reply.output_text)
    assert isinstance(value["city"], str) and isinstance(value["country"], str)


def test_previous_response_id_continues_a_conversation_the_history_lists(server: ServerProcess) -> None:
    client = _client(server)
    first = client.responses.create(model=MODEL, input="My name is Ada. Say hello.", temperature=0,
                                    max_output_tokens=12)
    second = client.responses.create(model=MODEL, input="What is my name?", previous_response_id=first.id,
                                     temperature=0, max_output_tokens=12)
    assert second.usage.input_tokens > first.usage.input_tokens
    assert client.responses.retrieve(second.id).output_text == second.output_text
    listed = client.responses.input_items.list(second.id)
    texts = [part.text for item in listed.data if item.type == "message" for part in item.content]
    assert texts[0] == "What is my name?" and "My name is Ada. Say hello." in texts
    shown = subprocess.run([HEARTH, "history", "show", first.id, "--json"], env=cli_env(server.log.parent),
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    recorded = [m["content"] for m in json.loads(shown.stdout)["messages"]]
    assert recorded == ["My name is Ada. Say hello.", first.output_text, "What is my name?", second.output_text]
    # continuing from the first response again forks: the recorded conversation is never rewritten
    branch = client.responses.create(model=MODEL, input="What is two plus two?", previous_response_id=first.id,
                                     temperature=0, max_output_tokens=8)
    again = json.loads(subprocess.run([HEARTH, "history", "show", first.id, "--json"],
                                      env=cli_env(server.log.parent), capture_output=True, text=True,
                                      timeout=60).stdout)
    assert len(again["messages"]) == 4 and branch.previous_response_id == first.id
    client.responses.delete(second.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(second.id)


def test_store_false_keeps_nothing(server: ServerProcess) -> None:
    client = _client(server)
    reply = client.responses.create(model=MODEL, input="Say hi.", store=False, max_output_tokens=4)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(reply.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model=MODEL, input="Again", previous_response_id=reply.id, max_output_tokens=4)


def test_errors_arrive_as_the_sdks_own_exceptions(server: ServerProcess) -> None:
    client = _client(server)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="no-such-model", input="hi", max_output_tokens=4)
    with pytest.raises(openai.BadRequestError) as bad:
        client.responses.create(model=MODEL, input="hi", temperature=3)
    assert bad.value.param == "temperature"
    with pytest.raises(openai.BadRequestError) as tool:
        client.responses.create(model=MODEL, input="hi", tools=[{"type": "web_search"}])
    assert tool.value.param == "tools[0].type"
    with pytest.raises(openai.BadRequestError) as image:
        client.responses.create(model=MODEL, input=[{"role": "user", "content": [
            {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]}])
    assert image.value.param == "input[0].content[0].type"


ITEM = st.fixed_dictionaries({}, optional={
    "type": st.sampled_from(["message", "function_call", "function_call_output", "reasoning", "item_reference", ""]),
    "role": st.sampled_from(["user", "assistant", "developer", "tool", ""]),
    "content": st.one_of(st.text(max_size=12), st.lists(st.fixed_dictionaries(
        {"type": st.sampled_from(["input_text", "input_image", "x"])}, optional={"text": st.text(max_size=6)}),
        max_size=2), st.integers()),
    "call_id": st.one_of(st.text(max_size=6), st.integers()), "name": st.text(max_size=6),
    "arguments": st.one_of(st.text(max_size=8), st.just('{"city": "Oslo"}')), "output": st.text(max_size=8)})
BODY = st.fixed_dictionaries({"model": st.sampled_from([MODEL, "", "nope"])}, optional={
    "input": st.one_of(st.text(max_size=20), st.lists(ITEM, max_size=3), st.integers()),
    "max_output_tokens": st.one_of(st.integers(-2, 4), st.text(max_size=2)),
    "temperature": st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.booleans()),
    "tools": st.lists(st.fixed_dictionaries({"type": st.sampled_from(["function", "web_search", "x"])},
                                            optional={"name": st.text(max_size=6)}), max_size=2),
    "tool_choice": st.one_of(st.sampled_from(["auto", "none", "required", "x"]), st.dictionaries(
        st.sampled_from(["type", "name"]), st.text(max_size=6), max_size=2)),
    "text": st.one_of(st.fixed_dictionaries({"format": st.fixed_dictionaries(
        {"type": st.sampled_from(["text", "json_object", "json_schema", "x"])},
        optional={"schema": st.one_of(st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
                                      st.text(max_size=3))})}), st.text(max_size=3)),
    "previous_response_id": st.one_of(st.text(max_size=10), st.just("resp_" + "0" * 24)),
    "reasoning": st.one_of(st.fixed_dictionaries({"effort": st.sampled_from(["low", "none", "x"])}), st.integers()),
})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODY)
def test_hostile_bodies_never_get_a_5xx(server: ServerProcess, body: dict[str, Any]) -> None:
    response = httpx.post(server.url + "/v1/responses", json={**body, "max_output_tokens": 2}
                          if isinstance(body.get("max_output_tokens"), int) and body["max_output_tokens"] > 2
                          else body, timeout=60)
    assert response.status_code < 500, (body, response.text)
    if response.status_code >= 400:
        assert "message" in response.json()["error"]

