"""Anthropic's Messages API through the official `anthropic` SDK against a live server on the bundled model.

The SDK's `messages.create` has no `temperature` argument in this release: it travels in `extra_body`.
"""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.server.conftest import MODEL, ServerProcess

GREEDY: dict[str, Any] = {"temperature": 0}
WEATHER = {"name": "get_weather", "description": "Current weather in a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
CAPITAL = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


def _client(live: ServerProcess, **kwargs: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=live.url, api_key="unused", max_retries=0, **kwargs)


def test_a_whole_answer_with_usage(live: ServerProcess) -> None:
    reply = _client(live).messages.create(model=MODEL, max_tokens=16, messages=CAPITAL,
                                          system="You are a geography teacher.", extra_body=GREEDY)
    assert reply.type == "message" and reply.role == "assistant" and reply.model == MODEL
    assert reply.id.startswith("msg_")
    assert reply.content[0].type == "text" and "Paris" in reply.content[0].text
    assert reply.stop_reason in ("end_turn", "max_tokens")
    assert reply.usage.input_tokens + (reply.usage.cache_read_input_tokens or 0) > 10
    assert reply.usage.output_tokens > 0


def test_the_same_question_again_is_read_from_the_prompt_cache(live: ServerProcess) -> None:
    client = _client(live)
    ask = {"model": MODEL, "max_tokens": 4, "messages": CAPITAL, "system": "Cache me, a long system prompt " * 8,
           "extra_body": GREEDY}
    first = client.messages.create(**ask)
    again = client.messages.create(**ask)
    total = first.usage.input_tokens + (first.usage.cache_read_input_tokens or 0)
    assert again.usage.cache_read_input_tokens and again.usage.cache_read_input_tokens > total / 2
    assert again.usage.input_tokens + again.usage.cache_read_input_tokens == total


def test_a_streamed_answer_arrives_in_events_and_accumulates(live: ServerProcess) -> None:
    client = _client(live)
    kinds: list[str] = []
    with client.messages.stream(model=MODEL, max_tokens=16, messages=CAPITAL, extra_body=GREEDY) as stream:
        pieces = []
        for event in stream:
            kinds.append(event.type)
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                pieces.append(event.delta.text)
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and "content_block_start" in kinds and kinds[-1] == "message_stop"
    assert final.content[0].type == "text" and final.content[0].text == "".join(pieces)
    assert "Paris" in final.content[0].text
    assert final.stop_reason in ("end_turn", "max_tokens") and final.usage.output_tokens >= 1
    assert final.usage.input_tokens + (final.usage.cache_read_input_tokens or 0) > 10


def test_stop_sequences_and_max_tokens_report_why_the_answer_ended(live: ServerProcess) -> None:
    client = _client(live)
    counted = client.messages.create(model=MODEL, max_tokens=3, messages=[
        {"role": "user", "content": "Count from one to twenty in words."}], extra_body=GREEDY)
    assert counted.stop_reason == "max_tokens" and counted.usage.output_tokens == 3
    stopped = client.messages.create(model=MODEL, max_tokens=16, messages=CAPITAL, stop_sequences=["Paris"],
                                     extra_body=GREEDY)
    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence == "Paris"
    assert "Paris" not in stopped.content[0].text


@pytest.mark.parametrize("choice", [{"type": "any"}, {"type": "tool", "name": "get_weather"}])
def test_a_forced_tool_call_is_schema_valid_whole_and_streamed(live: ServerProcess, choice: dict[str, Any]) -> None:
    client = _client(live)
    ask: dict[str, Any] = {"model": MODEL, "max_tokens": 64, "tools": [WEATHER], "tool_choice": choice,
                           "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
                           "extra_body": GREEDY}
    reply = client.messages.create(**ask)
    [use] = [b for b in reply.content if b.type == "tool_use"]
    assert reply.stop_reason == "tool_use" and use.name == "get_weather" and isinstance(use.input["city"], str)
    with client.messages.stream(**ask) as stream:
        final = stream.get_final_message()
    [streamed] = [b for b in final.content if b.type == "tool_use"]
    assert final.stop_reason == "tool_use" and streamed.input == use.input


def test_a_tool_round_trip_reaches_the_prompt(live: ServerProcess) -> None:
    client = _client(live)
    history: list[dict[str, Any]] = [
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                           "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                      "content": '{"temperature_c": 21, "sky": "sunny"}'}]},
    ]
    reply = client.messages.create(model=MODEL, max_tokens=32, tools=[WEATHER], messages=history,
                                   extra_body=GREEDY)
    assert reply.stop_reason in ("end_turn", "max_tokens", "tool_use")
    with_result = client.messages.count_tokens(model=MODEL, messages=history, tools=[WEATHER]).input_tokens
    without = client.messages.count_tokens(model=MODEL, messages=history[:2], tools=[WEATHER]).input_tokens
    assert with_result > without + 5


def test_count_tokens_matches_what_the_answer_reads(live: ServerProcess) -> None:
    client = _client(live)
    counted = client.messages.count_tokens(model=MODEL, messages=CAPITAL, system="Be brief.")
    reply = client.messages.create(model=MODEL, max_tokens=2, messages=CAPITAL, system="Be brief.", extra_body=GREEDY)
    assert counted.input_tokens == reply.usage.input_tokens + (reply.usage.cache_read_input_tokens or 0)


def test_errors_arrive_as_the_sdks_own_exceptions(live: ServerProcess) -> None:
    client = _client(live)
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.create(model="no-such-model", max_tokens=8, messages=CAPITAL)
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.messages.create(model=MODEL, max_tokens=8, messages=CAPITAL, extra_body={"temperature": 1.5})
    assert "temperature" in str(bad.value)
    with pytest.raises(anthropic.BadRequestError) as image:
        client.messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}]}])
    assert "messages[0].content[0].type" in str(image.value)
    raw = httpx.post(live.url + "/v1/messages", json={"model": MODEL, "messages": CAPITAL}, timeout=30)
    assert raw.status_code == 400 and raw.json()["type"] == "error" and "max_tokens" in raw.text
    server_tool = httpx.post(live.url + "/v1/messages", timeout=30, json={
        "model": MODEL, "max_tokens": 8, "messages": CAPITAL, "tools": [{"type": "web_search_20250305",
                                                                         "name": "web_search"}]})
    assert server_tool.status_code == 400 and "tools[0].type" in server_tool.text


def test_the_api_key_may_come_as_x_api_key(tmp_path_factory: pytest.TempPathFactory) -> None:
    home = tmp_path_factory.mktemp("anthropic-key")
    server = ServerProcess(home, "--num-ctx", "512", "--num-parallel", "1", env={"HEARTH_API_KEY": "s3cret"})
    try:
        with pytest.raises(anthropic.AuthenticationError):
            _client(server).messages.create(model=MODEL, max_tokens=2, messages=CAPITAL)
        keyed = anthropic.Anthropic(base_url=server.url, api_key="s3cret", max_retries=0)
        assert keyed.messages.create(model=MODEL, max_tokens=2, messages=CAPITAL, extra_body=GREEDY).content
    finally:
        server.stop()


BLOCK = st.fixed_dictionaries({"type": st.sampled_from(["text", "tool_use", "tool_result", "image", "thinking",
                                                         "bogus", ""])},
                              optional={"text": st.one_of(st.text(max_size=20), st.integers()),
                                        "id": st.text(max_size=8), "name": st.text(max_size=8),
                                        "input": st.one_of(st.dictionaries(st.text(max_size=4), st.integers(),
                                                                           max_size=2), st.text(max_size=4)),
                                        "tool_use_id": st.text(max_size=8),
                                        "content": st.one_of(st.text(max_size=8), st.lists(st.text(max_size=4)))})
BODY = st.fixed_dictionaries({"model": st.sampled_from([MODEL, "", "nope"])}, optional={
    "max_tokens": st.one_of(st.integers(-3, 3), st.none(), st.text(max_size=3)),
    "messages": st.lists(st.fixed_dictionaries({
        "role": st.sampled_from(["user", "assistant", "system", "x"]),
        "content": st.one_of(st.text(max_size=20), st.lists(BLOCK, max_size=3))}), max_size=3),
    "temperature": st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.none(), st.booleans()),
    "top_k": st.one_of(st.integers(-5, 5), st.text(max_size=2)),
    "stop_sequences": st.one_of(st.lists(st.text(max_size=3), max_size=20), st.text(max_size=3)),
    "tool_choice": st.one_of(st.fixed_dictionaries({"type": st.sampled_from(["auto", "any", "tool", "none", "x"])}),
                             st.text(max_size=3)),
    "tools": st.lists(st.fixed_dictionaries({"name": st.text(max_size=6)},
                                            optional={"input_schema": st.dictionaries(st.text(max_size=4),
                                                                                      st.integers(), max_size=2),
                                                      "type": st.sampled_from(["custom", "bash_20250124"])}),
                      max_size=2),
    "thinking": st.one_of(st.fixed_dictionaries({"type": st.sampled_from(["enabled", "disabled", "x"])}),
                          st.integers()),
    "system": st.one_of(st.text(max_size=10), st.lists(BLOCK, max_size=2)),
})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODY)
def test_hostile_bodies_never_get_a_5xx(live: ServerProcess, body: dict[str, Any]) -> None:
    response = httpx.post(live.url + "/v1/messages", json=body, timeout=60)
    assert response.status_code < 500, (body, response.text)
    if response.status_code >= 400:
        assert response.json()["type"] == "error"
