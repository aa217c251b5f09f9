"""Tools in the prompt, and grammars that force a valid call.

A template that renders `tools` itself (Qwen, Llama 3.1+, Mistral, Hermes…) gets them as the Hugging Face
convention defines: a list of `{"type": "function", "function": {name, description, parameters}}`.
For a template that does not (the documented fallback), Hearth describes the tools in the system prompt
and asks for Hermes-style `<tool_call>{"name": …, "arguments": {…}}</tool_call>` answers; assistant turns
that called tools are written back in that markup and tool results become user turns wrapped in
`<tool_response>` tags, so any chat model can follow the exchange.

`tool_choice: "required"` or a named function constrains generation with a llama.cpp grammar built from
the tools' JSON schemas: the output is exactly one JSON object `{"name": …, "arguments": {…}}` whose
arguments match the chosen tool's schema, even from a small model.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from hearth.engine.grammar import schema_grammar
from hearth.errors import InvalidRequestError
from hearth.types import Message

MAX_TOOLS = 128

FALLBACK_INSTRUCTIONS = (
    "You can call functions (tools) to help answer. The available tools, as JSON schemas:\n{tools}\n"
    "To call a tool, reply with only:\n<tool_call>\n{{\"name\": \"<tool name>\", \"arguments\": {{...}}}}\n"
    "</tool_call>\nTool results come back in <tool_response></tool_response> tags. If no tool is needed, "
    "answer normally."
)


def validate_tools(tools: Any, field: str = "tools") -> list[dict[str, Any]]:
    """Tools in OpenAI's/Ollama's shape, checked; InvalidRequestError naming the field otherwise."""
    if not isinstance(tools, list) or len(tools) > MAX_TOOLS:
        raise InvalidRequestError(f"'{field}' must be a list of at most {MAX_TOOLS} tools", field=field)
    out = []
    for i, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise InvalidRequestError(f"{field}[{i}] needs a function with a name", field=field)
        params = fn.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(params, dict):
            raise InvalidRequestError(f"{field}[{i}].function.parameters must be a JSON schema object", field=field)
        out.append({"type": "function", "function": {
            "name": fn["name"], "description": str(fn.get("description", "")), "parameters": params}})
    return out


def fallback_messages(messages: list[Message], tools: list[dict[str, Any]]) -> list[Message]:
    """The conversation rewritten for a template that knows nothing about tools."""
    listing = "\n".join(json.dumps(t["function"], ensure_ascii=False) for t in tools)
    instructions = FALLBACK_INSTRUCTIONS.format(tools=listing) if tools else ""
    out: list[Message] = []
    for m in messages:
        if m.role == "tool":
            label = f' name="{m.name}"' if m.name else ""
            out.append(Message("user", f"<tool_response{label}>\n{m.content}\n</tool_response>"))
        elif m.role == "assistant" and m.tool_calls:
            calls = "\n".join("<tool_call>\n" + json.dumps({"name": c.name, "arguments": c.arguments},
                                                           ensure_ascii=False) + "\n</tool_call>"
                              for c in m.tool_calls)
            out.append(Message("assistant", (m.content + "\n" if m.content else "") + calls))
        else:
            out.append(replace(m, tool_calls=()))
    if not instructions:
        return out
    if out and out[0].role == "system":
        return [Message("system", out[0].content + "\n\n" + instructions), *out[1:]]
    return [Message("system", instructions), *out]


def forced_call_grammar(tools: list[dict[str, Any]], name: str | None = None) -> str:
    """A grammar admitting exactly one call `{"name": …, "arguments": …}` to `name` (or to any tool)."""
    chosen = [t for t in tools if name is None or t["function"]["name"] == name]
    if not chosen:
        raise InvalidRequestError(f"tool_choice names {name!r}, which is not among the tools", field="tool_choice")
    options = [{
        "type": "object",
        "properties": {"name": {"const": t["function"]["name"]}, "arguments": t["function"]["parameters"]},
        "required": ["name", "arguments"],
    } for t in chosen]
    schema = options[0] if len(options) == 1 else {"anyOf": options}
    return schema_grammar(schema, field="tools")
