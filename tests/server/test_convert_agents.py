"""The Messages and Responses converters on their own: every event and object they make validates against the
official SDKs' own types, thinking and tool calls included (the bundled model neither thinks nor calls unasked).
"""

from __future__ import annotations

import json
from typing import Any

import anthropic.types as anthropic_types
import openai.types.responses as openai_types
import pytest
from pydantic import TypeAdapter

from hearth.errors import InvalidRequestError
from hearth.server import anthropic, responses
from hearth.server.schemas import AnthropicMessagesRequest, ResponsesRequest
from hearth.types import Answer, Done, Message, Stats, ToolCall

DONE = Done("stop", Stats(prompt_tokens=30, cached_tokens=20, completion_tokens=9))
CALL = ToolCall("get_weather", {"city": "Paris"}, "call_1")


def sse(data: bytes) -> list[dict[str, Any]]:
    """The JSON payloads of a server-sent event stream, checking each `event:` name matches its type."""
    out = []
    for chunk in data.decode().split("\n\n"):
        if not chunk.strip():
            continue
        lines = dict(line.split(": ", 1) for line in chunk.splitlines())
        payload = json.loads(lines["data"])
        assert lines["event"] == payload["type"]
        out.append(payload)
    return out


def test_an_anthropic_stream_of_thinking_text_and_a_call_validates_and_adds_up() -> None:
    stream = anthropic.MessageStream("m", "msg_1")
    data = stream.thinking("Let me think.") + stream.text("Checking") + stream.text(" now.") + stream.tool_call(CALL)
    events = sse(data + stream.end(DONE))
    adapter: TypeAdapter[Any] = TypeAdapter(anthropic_types.RawMessageStreamEvent)
    for event in events:
        if event["type"] != "ping":  # the SDK skips pings before parsing
            adapter.validate_python(event)
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["message_start", "ping"] and kinds[-1] == "message_stop"
    starts = [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"]
    assert starts == ["thinking", "text", "tool_use"]
    assert kinds.count("content_block_start") == kinds.count("content_block_stop") == 3
    delta = next(e for e in events if e["type"] == "message_delta")
    assert delta["delta"]["stop_reason"] == "tool_use"
    assert delta["usage"] == {"input_tokens": 10, "output_tokens": 9, "cache_read_input_tokens": 20,
                              "cache_creation_input_tokens": 0}
    arguments = next(e for e in events if e.get("delta", {}).get("type") == "input_json_delta")
    assert json.loads(arguments["delta"]["partial_json"]) == {"city": "Paris"}


def test_a_whole_anthropic_message_validates() -> None:
    answer = Answer("Checking now.", DONE, "Let me think.", (CALL,))
    body = anthropic.message_response("m", answer, "msg_1")
    message = anthropic_types.Message.model_validate(body)
    assert [b.type for b in message.content] == ["thinking", "text", "tool_use"]
    assert message.stop_reason == "tool_use"
    stopped = anthropic.message_response("m", Answer("Hi", Done("stop", stop_sequence="###")), "msg_2")
    assert (stopped["stop_reason"], stopped["stop_sequence"]) == ("stop_sequence", "###")
    long = anthropic.message_response("m", Answer("Hi", Done("length")), "msg_3")
    assert long["stop_reason"] == "max_tokens"


def test_anthropic_blocks_become_native_messages() -> None:
    body = AnthropicMessagesRequest.model_validate({
        "model": "m", "max_tokens": 8, "system": [{"type": "text", "text": "Be brief."}],
        "messages": [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": ""},
                                              {"type": "tool_use", "id": "t1", "name": "get_weather",
                                               "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                          "content": [{"type": "text", "text": "sunny"}]},
                                         {"type": "text", "text": "And tomorrow?"}]}],
        "tools": [{"name": "get_weather", "input_schema": {"type": "object", "properties": {}}}],
        "tool_choice": {"type": "any"}, "stop_sequences": ["###"], "top_k": 5})
    native = anthropic.messages_request(body)
    assert native.messages == [
        Message("system", "Be brief."), Message("user", "Weather?"),
        Message("assistant", "", tool_calls=(ToolCall("get_weather", {"city": "Paris"}, "t1"),)),
        Message("tool", "sunny", name="get_weather", tool_call_id="t1"), Message("user", "And tomorrow?")]
    assert native.turn is not None and native.turn.tool_choice == "required"
    assert native.options.requested() == {"num_predict": 8, "stop": ["###"], "top_k": 5}
    for bad, field in (({"messages": [{"role": "system", "content": "x"}]}, "messages[0].role"),
                       ({"max_tokens": 0}, "max_tokens"), ({"temperature": 1.5}, "temperature"),
                       ({"tool_choice": {"type": "tool"}}, "tool_choice.name"),
                       ({"thinking": {"type": "sometimes"}}, "thinking.type")):
        with pytest.raises(InvalidRequestError) as err:
            anthropic.messages_request(AnthropicMessagesRequest.model_validate({**body.model_dump(), **bad}))
        assert err.value.field == field


def test_a_responses_stream_of_reasoning_text_and_a_call_validates_and_ends_whole() -> None:
    body = ResponsesRequest.model_validate({"model": "m", "input": "hi", "reasoning": {"effort": "low"}})
    stream = responses.ResponseStream("resp_abc", body, "m", 1700000000)
    data = stream.thinking("Hmm.") + stream.text("It is ") + stream.text("sunny.") + stream.tool_call(CALL)
    events = sse(data + stream.end(DONE))
    adapter: TypeAdapter[Any] = TypeAdapter(openai_types.ResponseStreamEvent)
    for event in events:
        adapter.validate_python(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    added = [e["item"]["type"] for e in events if e["type"] == "response.output_item.added"]
    assert added == ["reasoning", "message", "function_call"]
    final = openai_types.Response.model_validate(events[-1]["response"])
    assert final.output_text == "It is sunny." and final.usage is not None and final.usage.output_tokens == 9
    done_ids = [e["item"]["id"] for e in events if e["type"] == "response.output_item.done"]
    assert done_ids == [item.id for item in final.output]  # the stream and the whole response agree


def test_responses_items_become_native_messages_and_refuse_what_they_cannot_take() -> None:
    items = responses.input_items([
        {"role": "developer", "content": "Be brief."}, {"role": "user", "content": [{"type": "input_text",
                                                                                    "text": "Weather?"}]},
        {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": '{"city": "Oslo"}'},
        {"type": "function_call_output", "call_id": "c1", "output": "snow"}])
    assert all(item["id"] for item in items)
    assert responses.messages(items, "Answer kindly.") == [
        Message("system", "Answer kindly."), Message("system", "Be brief."), Message("user", "Weather?"),
        Message("assistant", "", tool_calls=(ToolCall("get_weather", {"city": "Oslo"}, "c1"),)),
        Message("tool", "snow", name="get_weather", tool_call_id="c1")]
    for bad, field in (([{"type": "item_reference", "id": "x"}], "input[0].type"),
                       ([{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}],
                        "input[0].content[0].type"),
                       ([{"type": "function_call", "call_id": "c", "name": "f", "arguments": "[1]"}],
                        "input[0].arguments")):
        with pytest.raises(InvalidRequestError) as err:
            responses.input_items(bad)
        assert err.value.field == field
    with pytest.raises(InvalidRequestError):  # an answer cannot be asked for after an assistant turn
        responses.messages(responses.input_items([{"role": "assistant", "content": "Hi"}]))
