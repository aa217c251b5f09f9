"""The tool-call loop: answer, run the tools the model calls, send their results back, answer again.

The executor decides how a call runs: the terminal shows it and asks first (`hearth chat --functions`);
the web page and MCP tools will bring their own. Without an executor the turn ends at the first answer,
tool calls and all, for the caller to handle (the HTTP APIs hand them to the client).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hearth.options import Options
from hearth.service.generation import ChatFn, Generation
from hearth.service.loaded import Turn
from hearth.types import Answer, Message, Sink, ToolCall

MAX_TOOL_ROUNDS = 5

Executor = Callable[[ToolCall], str]


@dataclass
class TurnResult:
    """A finished turn: the final answer, the messages it added (the user's included), the last generation."""

    answer: Answer
    generation: Generation
    messages: list[Message] = field(default_factory=list)
    rounds: int = 1


def answer_turn(chat: ChatFn, model: str, messages: list[Message], options: Options | None, *,
                tools: list[dict[str, Any]], tool_choice: str = "auto", think: bool | None = None,
                executor: Executor | None = None, on_event: Sink | None = None,
                max_rounds: int = MAX_TOOL_ROUNDS) -> TurnResult:
    """Answer `messages` (whose last is the new question), running tool calls through `executor`.

    The first round uses `tool_choice`; later rounds let the model decide, so a forced call cannot loop.
    After `max_rounds` answers that all called tools, the last one stands. Interrupting (Ctrl-C) or an
    engine error propagates after the model has been handed back.
    """
    if max_rounds < 1:
        raise ValueError("max_rounds must be at least 1")
    added = list(messages[-1:])
    history = list(messages[:-1])
    for round_ in range(1, max_rounds + 1):
        choice = tool_choice if round_ == 1 else "auto"
        turn = Turn(tools=tools, tool_choice=choice, think=think) if tools or think is not None else None
        generation = chat(model, [*history, *added], options, turn=turn)
        answer = generation.consume(on_event)
        if not answer.calls or executor is None:
            break
        added.append(Message("assistant", answer.text, tool_calls=answer.calls))
        for call in answer.calls:
            added.append(Message("tool", executor(call), name=call.name, tool_call_id=call.id))
    handed_back = answer.calls if executor is None else ()  # calls nobody ran stay on the final answer
    added.append(Message("assistant", answer.text, tool_calls=handed_back, thinking=answer.thinking or None))
    return TurnResult(answer, generation, added, round_)
