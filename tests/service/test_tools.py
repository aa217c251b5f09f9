"""The tool-call loop: rounds, the executor, the round limit, and a forced call through the real engine."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from hearth.options import Options, parse_options
from hearth.service import Hearth, Turn
from hearth.service.tools import answer_turn
from hearth.types import Answer, Done, Event, Message, ToolCall
from tests.conftest import private_hearth

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


@dataclass
class ScriptedGeneration:
    """A generation whose answer is given: what a model would have said in one round."""

    answer: Answer

    def consume(self, on_event: Any = None) -> Answer:
        if on_event is not None:
            on_event(self.answer.done)
        return self.answer


@dataclass
class ScriptedChat:
    """Stands in for `Hearth.chat`: answers from a script, remembering what each round was asked."""

    script: list[Answer]
    asked: list[tuple[list[Message], Turn | None]] = field(default_factory=list)

    def __call__(self, model: str, messages: list[Message], options: Options | None, *,
                 turn: Turn | None = None) -> ScriptedGeneration:
        self.asked.append((list(messages), turn))
        return ScriptedGeneration(self.script[len(self.asked) - 1])


def calling(*cities: str) -> Answer:
    return Answer("", Done("stop"), calls=tuple(ToolCall("get_weather", {"city": c}, f"call_{c}") for c in cities))


def said(text: str) -> Answer:
    return Answer(text, Done("stop"))


QUESTION = [Message("system", "Be brief."), Message("user", "Weather in Paris and Oslo?")]


def test_calls_run_through_the_executor_and_their_results_go_back() -> None:
    chat = ScriptedChat([calling("Paris", "Oslo"), said("Sunny in Paris, snow in Oslo.")])
    ran: list[ToolCall] = []

    def executor(call: ToolCall) -> str:
        ran.append(call)
        return f"{call.arguments['city']}: fine"

    result = answer_turn(chat, "m", QUESTION, None, tools=[WEATHER], tool_choice="required", executor=executor)
    assert [c.arguments["city"] for c in ran] == ["Paris", "Oslo"]
    assert result.answer.text == "Sunny in Paris, snow in Oslo." and result.rounds == 2
    roles = [(m.role, m.content) for m in result.messages]
    assert roles == [("user", "Weather in Paris and Oslo?"), ("assistant", ""), ("tool", "Paris: fine"),
                     ("tool", "Oslo: fine"), ("assistant", "Sunny in Paris, snow in Oslo.")]
    assert result.messages[1].tool_calls == calling("Paris", "Oslo").calls
    assert [m.tool_call_id for m in result.messages[2:4]] == ["call_Paris", "call_Oslo"]
    second_round, turn = chat.asked[1]
    assert second_round[:2] == QUESTION and second_round[-1].role == "tool"
    assert chat.asked[0][1] == Turn(tools=[WEATHER], tool_choice="required") and turn is not None
    assert turn.tool_choice == "auto"  # a forced first call cannot force every round


def test_the_round_limit_ends_a_model_that_keeps_calling() -> None:
    chat = ScriptedChat([calling("Paris")] * 10)
    count = 0

    def executor(call: ToolCall) -> str:
        nonlocal count
        count += 1
        return "again"

    result = answer_turn(chat, "m", QUESTION, None, tools=[WEATHER], executor=executor, max_rounds=3)
    assert len(chat.asked) == 3 and count == 3 and result.rounds == 3
    assert result.messages[-1].role == "assistant"


def test_without_an_executor_the_calls_are_handed_back() -> None:
    chat = ScriptedChat([calling("Paris")])
    result = answer_turn(chat, "m", QUESTION, None, tools=[WEATHER])
    assert len(chat.asked) == 1 and result.answer.calls
    assert result.messages[-1].tool_calls == result.answer.calls


def test_no_tools_means_one_plain_round() -> None:
    events: list[Event] = []
    chat = ScriptedChat([said("Hi.")])
    result = answer_turn(chat, "m", [Message("user", "Hello")], None, tools=[], on_event=events.append)
    assert chat.asked[0][1] is None and result.answer.text == "Hi." and events == [Done("stop")]


@pytest.fixture(scope="module")
def hearth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hearth]:
    yield from private_hearth(tmp_path_factory, "service-tools", num_parallel=1, num_ctx=2048, history=False)


def test_a_forced_call_runs_the_executor_through_the_real_engine(hearth: Hearth) -> None:
    ran: list[ToolCall] = []

    def executor(call: ToolCall) -> str:
        ran.append(call)
        return "22 degrees and sunny"

    result = hearth.chat_turn("smollm2:135m", [Message("user", "What's the weather like in Paris?")],
                              parse_options({"temperature": 0, "num_predict": 64}), tools=[WEATHER],
                              tool_choice="get_weather", executor=executor, max_rounds=2)
    assert ran and ran[0].name == "get_weather" and isinstance(ran[0].arguments.get("city"), str)
    assert result.messages[0] == Message("user", "What's the weather like in Paris?")
    assert result.messages[1].tool_calls[0] == ran[0]
    assert result.messages[2] == Message("tool", "22 degrees and sunny", name="get_weather",
                                         tool_call_id=ran[0].id)
    assert result.messages[-1].role == "assistant" and 2 >= result.rounds >= 1
    assert result.answer.done.reason in ("stop", "length")
