"""Tool calls and thinking on the wire: pure conversions for both protocols.

Requests: OpenAI's `tools`, `tool_choice` (`auto`, `none`, `required`, `{"type": "function", "function":
{"name": …}}`), assistant messages with `tool_calls` (arguments as a JSON string) and `tool` messages with
`tool_call_id`; Ollama's `tools`, `message.tool_calls` (arguments as an object), `tool` messages (with
`tool_name`) and `think`. Responses: OpenAI's `message.tool_calls` / streamed `delta.tool_calls` with
`finish_reason: "tool_calls"` and `reasoning_content` for thinking; Ollama's `message.tool_calls` and
`message.thinking`. `parallel_tool_calls` is accepted: a free (auto) answer may hold several calls, a
forced one (`required` or a named function) holds exactly one.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from hearth.errors import InvalidRequestError
from hearth.service import Turn, new_call_id, validate_tools
from hearth.types import Message, ToolCall


def openai_turn(tools: Any, tool_choice: Any) -> Turn | None:
    """The Turn for an OpenAI request (None when it has no tools)."""
    if not tools:
        if tool_choice not in (None, "none", "auto"):
            raise InvalidRequestError("tool_choice needs tools", field="tool_choice")
        return None
    checked = validate_tools(tools)
    if tool_choice is None or tool_choice in ("auto", "none", "required"):
        return Turn(tools=checked, tool_choice=tool_choice or "auto")
    if isinstance(tool_choice, dict) and isinstance(tool_choice.get("function"), dict):
        name = tool_choice["function"].get("name")
        if isinstance(name, str) and name:
            return Turn(tools=checked, tool_choice=name)
    raise InvalidRequestError('tool_choice must be "auto", "none", "required" or {"type": "function", '
                              '"function": {"name": ...}}', field="tool_choice")


def ollama_turn(tools: Any, think: Any) -> Turn | None:
    """The Turn for an Ollama request: tools (the model decides) and the `think` flag."""
    if think not in (None, True, False, "high", "medium", "low"):
        raise InvalidRequestError('think must be true, false, "high", "medium" or "low"', field="think")
    thinking = None if think is None else bool(think)
    if not tools and thinking is None:
        return None
    return Turn(tools=validate_tools(tools) if tools else [], tool_choice="auto", think=thinking)


def _arguments(value: Any, field: str) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError:
            raise InvalidRequestError("tool call arguments must be a JSON object", field=field) from None
    if not isinstance(value, dict):
        raise InvalidRequestError("tool call arguments must be a JSON object", field=field)
    return value


def with_calls(message: Message, extra: dict[str, Any], index: int) -> Message:
    """`message` with the tool-call fields a client sent (either protocol's shape)."""
    field = f"messages[{index}]"
    calls = extra.get("tool_calls") or []
    if not isinstance(calls, list):
        raise InvalidRequestError("tool_calls must be a list", field=f"{field}.tool_calls")
    parsed = []
    for j, call in enumerate(calls):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise InvalidRequestError("each tool call needs a function name", field=f"{field}.tool_calls[{j}]")
        args = _arguments(fn.get("arguments", {}), f"{field}.tool_calls[{j}].function.arguments")
        parsed.append(ToolCall(fn["name"], args, str(call.get("id") or new_call_id())))
    name = extra.get("tool_name") or extra.get("name")
    call_id = extra.get("tool_call_id")
    return replace(message, tool_calls=tuple(parsed), name=name if isinstance(name, str) else None,
                   tool_call_id=call_id if isinstance(call_id, str) else None)


def openai_calls(calls: list[ToolCall]) -> list[dict[str, Any]]:
    """Tool calls in OpenAI's shape (arguments as a JSON string)."""
    return [{"id": c.id, "type": "function",
             "function": {"name": c.name, "arguments": json.dumps(c.arguments, ensure_ascii=False)}} for c in calls]


def ollama_calls(calls: list[ToolCall]) -> list[dict[str, Any]]:
    """Tool calls in Ollama's shape (arguments as an object)."""
    return [{"function": {"name": c.name, "arguments": c.arguments}} for c in calls]
