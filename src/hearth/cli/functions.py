"""`hearth chat --functions FILE.py`: let the model call Python functions you wrote, with your consent.

Only the public functions defined in FILE (not imported into it, not starting with `_`) become tools.
Their JSON schemas come from the signatures and type hints, their descriptions from the docstrings. Every
call the model asks for is shown with its arguments and runs only after you answer yes; the result (or
the error) goes back to the model as a tool message.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from hearth.errors import InvalidRequestError
from hearth.types import ToolCall

_JSON_TYPES: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean",
                               list: "array", dict: "object"}
MAX_RESULT_CHARS = 8000


def load_functions(path: Path) -> dict[str, Callable[..., Any]]:
    """The public functions defined in a Python file, by name."""
    if not path.is_file() or path.suffix != ".py":
        raise InvalidRequestError(f"{path} is not a Python file", hint="e.g. hearth chat --functions tools.py")
    spec = importlib.util.spec_from_file_location(f"hearth_user_functions_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise InvalidRequestError(f"{path} cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        raise InvalidRequestError(f"{path.name} failed to load: {type(err).__name__}: {err}") from None
    found = {name: fn for name, fn in vars(module).items()
             if isinstance(fn, types.FunctionType) and fn.__module__ == module.__name__ and not name.startswith("_")}
    if not found:
        raise InvalidRequestError(f"{path.name} defines no public functions to offer as tools")
    return found


def tool_schema(fn: Callable[..., Any]) -> dict[str, Any]:
    """OpenAI's tool shape for a function, from its signature, type hints and docstring."""
    hints = typing.get_type_hints(fn)
    properties: dict[str, Any] = {}
    required = []
    for name, param in inspect.signature(fn).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        hint = typing.get_origin(hints.get(name)) or hints.get(name)
        properties[name] = {"type": _JSON_TYPES.get(hint, "string")}
        if param.default is inspect.Parameter.empty:
            required.append(name)
    doc = inspect.getdoc(fn) or ""
    return {"type": "function", "function": {
        "name": fn.__name__, "description": doc.split("\n\n")[0],
        "parameters": {"type": "object", "properties": properties, "required": required}}}


def run_call(functions: dict[str, Callable[..., Any]], call: ToolCall, *, confirm: bool = True) -> str:
    """Show a call, ask before running it, and return what goes back to the model."""
    args = json.dumps(call.arguments, ensure_ascii=False)
    click.secho(f"[tool call] {call.name}({args})", fg="cyan", err=True)
    fn = functions.get(call.name)
    if fn is None:
        return f"Error: there is no tool named {call.name!r}."
    if confirm and not click.confirm("Run it?", default=False, err=True):
        return "The user declined to run this tool."
    try:
        result = fn(**call.arguments)
    except Exception as err:  # the user's own code: report, don't crash the chat
        result = f"Error: {type(err).__name__}: {err}"
    text = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False, default=str)
    click.secho(f"[tool result] {text[:500]}", fg="cyan", err=True)
    return text[:MAX_RESULT_CHARS]
