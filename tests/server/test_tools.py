"""Tool calling on both APIs through the official clients against a live server on the bundled model."""

from __future__ import annotations

import json

import ollama
import openai

from tests.server.conftest import MODEL, ServerProcess

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
QUESTION = "What is the weather in Paris?"


def _client(live: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=live.url + "/v1", api_key="unused")


def test_openai_required_call_is_valid_stream_and_not(live: ServerProcess) -> None:
    client = _client(live)
    reply = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": QUESTION}],
                                           tools=[WEATHER], tool_choice="required", temperature=0, max_tokens=64)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert isinstance(json.loads(call.function.arguments)["city"], str)
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": QUESTION}], tools=[WEATHER], stream=True,
        tool_choice={"type": "function", "function": {"name": "get_weather"}}, temperature=0, max_tokens=64))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    streamed = [tc for d in deltas for tc in (d.tool_calls or [])]
    assert streamed and streamed[0].function.name == "get_weather"
    assert "city" in json.loads(streamed[0].function.arguments)
    assert not any((d.content or "").strip() for d in deltas)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


def test_openai_round_trip_call_result_answer(live: ServerProcess) -> None:
    client = _client(live)
    first = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": QUESTION}],
                                           tools=[WEATHER], tool_choice="required", temperature=0, max_tokens=64)
    call = first.choices[0].message.tool_calls[0]
    final = client.chat.completions.create(model=MODEL, temperature=0, max_tokens=48, tools=[WEATHER], messages=[
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": '{"temperature_c": 21, "sky": "sunny"}'},
    ], tool_choice="none")
    text = final.choices[0].message.content
    assert text and text.strip() and "<tool_call>" not in text
    assert final.choices[0].finish_reason in ("stop", "length")


def test_ollama_tools_stream_and_round_trip(live: ServerProcess) -> None:
    client = ollama.Client(host=live.url)
    messages = [{"role": "user", "content": "Call get_weather for Paris."}]
    # Ollama's API has no tool_choice; the model decides. Whatever it does, markup never leaks.
    parts = list(client.chat(model=MODEL, messages=messages, tools=[WEATHER], stream=True,
                             options={"temperature": 0, "num_predict": 64}))
    content = "".join(p.message.content or "" for p in parts)
    calls = [c for p in parts for c in (p.message.tool_calls or [])]
    assert "<tool_call>" not in content and "</tool_call>" not in content
    for call in calls:
        assert call.function.name and isinstance(call.function.arguments, dict)
    history = [*messages,
               {"role": "assistant", "content": "", "tool_calls": [
                   {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
               {"role": "tool", "tool_name": "get_weather", "content": '{"temperature_c": 21}'}]
    final = client.chat(model=MODEL, messages=history, options={"temperature": 0, "num_predict": 48})
    assert final.done_reason in ("stop", "length") and "<tool_call>" not in final.message.content
    # the tool's result reached the prompt (whether the tiny model then says anything differs by CPU:
    # on a Zen 4 it ends its turn at once)
    without = client.chat(model=MODEL, messages=history[:-1], options={"temperature": 0, "num_predict": 1})
    assert final.prompt_eval_count > without.prompt_eval_count


def test_bad_tool_requests_are_400(live: ServerProcess) -> None:
    client = _client(live)
    for kwargs in ({"tools": [{"type": "function"}]},
                   {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
                   {"tools": [WEATHER], "tool_choice": 7}):
        try:
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], **kwargs)
        except openai.BadRequestError as err:
            assert err.status_code == 400
        else:
            raise AssertionError(f"accepted {kwargs}")
    assert live.healthy()
