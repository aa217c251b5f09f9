"""Tool calls and thinking through the real engine: forced calls are valid, markup never leaks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hearth.options import parse_options
from hearth.service import Hearth, Turn
from hearth.types import Done, Message, TextChunk, ThinkingChunk, ToolCallEvent
from tests.conftest import private_hearth

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city", "unit"]}}}
TIME = {"type": "function", "function": {"name": "get_time", "description": "The time now",
                                         "parameters": {"type": "object", "properties": {}}}}


@pytest.fixture(scope="module")
def hearth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hearth]:
    yield from private_hearth(tmp_path_factory, "tools-home", num_parallel=1, num_ctx=2048)


def events(hearth: Hearth, messages: list[Message], turn: Turn) -> list:
    return list(hearth.chat("smollm2:135m", messages, parse_options({"temperature": 0, "num_predict": 96}), turn=turn))


@pytest.mark.parametrize("choice", ["required", "get_weather"])
def test_a_forced_call_has_arguments_matching_the_schema(hearth: Hearth, choice: str) -> None:
    out = events(hearth, [Message("user", "What's the weather like in Paris?")],
                 Turn(tools=[WEATHER, TIME], tool_choice=choice))
    calls = [e.call for e in out if isinstance(e, ToolCallEvent)]
    assert len(calls) == 1, out
    call = calls[0]
    if choice == "get_weather":
        assert call.name == "get_weather"
    if call.name == "get_weather":
        assert isinstance(call.arguments["city"], str) and call.arguments["unit"] in ("celsius", "fahrenheit")
        assert set(call.arguments) == {"city", "unit"}
    assert not any(isinstance(e, TextChunk) and e.text.strip() for e in out)
    assert isinstance(out[-1], Done) and out[-1].reason == "stop"


def test_a_tool_result_round_trip_produces_an_answer(hearth: Hearth) -> None:
    first = events(hearth, [Message("user", "What's the weather in Paris?")],
                   Turn(tools=[WEATHER], tool_choice="get_weather"))
    call = next(e.call for e in first if isinstance(e, ToolCallEvent))
    history = [
        Message("user", "What's the weather in Paris?"),
        Message("assistant", "", tool_calls=(call,)),
        Message("tool", '{"temperature": 21, "sky": "sunny"}', name="get_weather", tool_call_id=call.id),
    ]
    second = events(hearth, history, Turn(tools=[WEATHER], tool_choice="none"))
    text = "".join(e.text for e in second if isinstance(e, TextChunk))
    assert text.strip()
    assert "<tool_call>" not in text and "<tool_response>" not in text
    assert isinstance(second[-1], Done) and second[-1].reason in ("stop", "length")


def test_an_unknown_named_tool_is_a_clear_error(hearth: Hearth) -> None:
    from hearth.errors import InvalidRequestError

    with pytest.raises(InvalidRequestError) as err:
        events(hearth, [Message("user", "hi")], Turn(tools=[WEATHER], tool_choice="launch_rockets"))
    assert err.value.field == "tool_choice"


def test_thinking_requested_on_a_plain_model_just_answers(hearth: Hearth) -> None:
    out = events(hearth, [Message("user", "What is the capital of France? Answer in one word.")], Turn(think=True))
    assert "Paris" in "".join(e.text for e in out if isinstance(e, TextChunk))
    assert not any(isinstance(e, ThinkingChunk) for e in out)
