"""Chat templates: the model's own Jinja template, rendered in a sandbox.

GGUF files carry their chat template (`tokenizer.chat_template`), written by whoever made the file, so it
is untrusted code. It renders in Jinja's `ImmutableSandboxedEnvironment` (no attribute access to Python
internals, no mutation of the inputs), with string/list repetition capped so a hostile template cannot
allocate gigabytes, and the output length capped. A template that fails raises `TemplateError`.

A model without a template gets ChatML (`<|im_start|>role ... <|im_end|>`), the most common format, and a
notice saying so.
"""

from __future__ import annotations

import json
import operator
from datetime import datetime
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from hearth.errors import TemplateError
from hearth.types import Message

MAX_OUTPUT_CHARS = 4_000_000
MAX_REPEAT = 100_000

FALLBACK_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox with `*` and `**` bounded (`'x' * 10**10` would otherwise exhaust memory)."""

    intercepted_binops = frozenset(["*", "**"])

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "**":
            if isinstance(right, (int, float)) and abs(right) > 64:
                raise jinja2.sandbox.SecurityError("exponent too large in chat template")
            return operator.pow(left, right)
        if operator_name == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and n * max(1, len(seq)) > MAX_REPEAT:
                    raise jinja2.sandbox.SecurityError("repetition too large in chat template")
            return operator.mul(left, right)
        return super().call_binop(context, operator_name, left, right)


def _raise_exception(message: str) -> None:
    raise TemplateError(f"the chat template refused the conversation: {message}")


def _tojson(value: Any, indent: int | None = None, ensure_ascii: bool = False, **_: Any) -> str:
    return json.dumps(value, indent=indent, ensure_ascii=ensure_ascii)


def _environment() -> _Sandbox:
    env = _Sandbox(trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    env.filters["tojson"] = _tojson
    return env


_ENV = _environment()


class ChatTemplate:
    """A compiled chat template plus the special-token texts it may reference."""

    def __init__(self, source: str | None, *, bos_token: str = "", eos_token: str = "") -> None:
        self.is_fallback = not source
        self.source = source or FALLBACK_TEMPLATE
        self.bos_token = bos_token
        self.eos_token = eos_token
        try:
            self._compiled = _ENV.from_string(self.source)
        except jinja2.TemplateSyntaxError as err:
            raise TemplateError(f"the chat template has a syntax error (line {err.lineno}): {err.message}") from err

    @property
    def supports_tools(self) -> bool:
        """True if the template renders a `tools` list itself."""
        return "tools" in self.source

    def render(self, messages: list[Message], *, add_generation_prompt: bool = True,
               tools: list[dict[str, Any]] | None = None, extra: dict[str, Any] | None = None) -> str:
        """The prompt text for `messages`, ending with the assistant's turn opener."""
        payload = [m.to_template() for m in messages]
        try:
            text = self._compiled.render(
                messages=payload, add_generation_prompt=add_generation_prompt, bos_token=self.bos_token,
                eos_token=self.eos_token, tools=tools, **(extra or {}),
            )
        except TemplateError:
            raise
        except jinja2.sandbox.SecurityError as err:
            raise TemplateError(f"the chat template tried something unsafe: {err}") from err
        except (jinja2.TemplateError, TypeError, ValueError, KeyError, IndexError, AttributeError,
                ZeroDivisionError, OverflowError, RecursionError, MemoryError) as err:
            raise TemplateError(f"the chat template failed to render: {type(err).__name__}: {err}") from err
        if len(text) > MAX_OUTPUT_CHARS:
            raise TemplateError("the chat template produced an implausibly long prompt")
        return text
