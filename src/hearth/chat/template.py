"""Chat templates: the model's own Jinja template, rendered in a sandbox under a budget.

GGUF files carry their chat template (`tokenizer.chat_template`), written by whoever made the file, so it
is untrusted code. It renders in Jinja's `ImmutableSandboxedEnvironment` (no attribute access to Python
internals, no mutation of the inputs), and under a budget enforced while it runs, not checked afterwards:

- every string it makes (by `~`, `+`, `*`, `%`, a filter or a method) is at most `MAX_STRING` characters,
  and the numbers that make strings grow (repetition counts, widths and precisions in `format` and `%`,
  `center`/`ljust`/`rjust`/`zfill`/`indent`/`wordwrap` widths, `tojson` indents) are capped, so no single step
  can allocate more than a few times that;
- loops over `range` and over the conversation, and every call, filter and operator, count against
  `MAX_STEPS` and a deadline of `MAX_SECONDS`;
- the output is at most `MAX_OUTPUT_CHARS`.

Going over any limit, or any other failure while compiling or rendering, is a `TemplateError`. A model
without a template gets ChatML (`<|im_start|>role ... <|im_end|>`), the most common format, and a notice.
"""

from __future__ import annotations

import functools
import json
import operator
import re
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from hearth.errors import TemplateError
from hearth.types import Message

MAX_OUTPUT_CHARS = 4_000_000
MAX_STRING = 4_000_000
MAX_REPEAT = 100_000
MAX_WIDTH = 10_000
MAX_STEPS = 2_000_000
MAX_SECONDS = 2.0

FALLBACK_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
_WIDTH = re.compile(r"%[-+ #0]*(\d+)?(?:\.(\d+))?|\{[^{}]*?:[^{}]*?(\d+)(?:\.(\d+))?[^{}]*\}")
_GROWING_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})


class _Budget(threading.local):
    """The running render's steps and deadline (one per thread: several requests render at once)."""

    steps = 0
    deadline = float("inf")

    def tick(self, n: int = 1) -> None:
        self.steps += n
        if self.steps > MAX_STEPS:
            raise SecurityError(f"the template ran more than {MAX_STEPS:,} steps")
        if self.steps % 1024 < n and time.monotonic() > self.deadline:
            raise SecurityError(f"the template took longer than {MAX_SECONDS:g} s")


_BUDGET = _Budget()


def _sized(value: Any) -> Any:
    """`value`, refused if it is a string (or list) longer than MAX_STRING."""
    if isinstance(value, (str, list, tuple)) and len(value) > MAX_STRING:
        raise SecurityError(f"the template made a value longer than {MAX_STRING:,}")
    return value


def _check_widths(spec: Any) -> None:
    if isinstance(spec, str):
        for match in _WIDTH.finditer(spec):
            if any(g and int(g) > MAX_WIDTH for g in match.groups()):
                raise SecurityError(f"a width or precision over {MAX_WIDTH:,} in a format string")


class _Guarded(list):  # type: ignore[type-arg]
    """A list whose iteration counts against the budget (the conversation, tools)."""

    def __iter__(self) -> Iterator[Any]:
        for item in super().__iter__():
            _BUDGET.tick()
            yield item


def _guarded_range(*args: int) -> Iterator[int]:
    for i in range(*args):
        _BUDGET.tick()
        yield i


class _Generator(CodeGenerator):
    """Compiles `a ~ b` to a call the budget sees (Jinja joins it out of the sandbox's reach otherwise)."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:  # noqa: N802 - Jinja's visitor name
        self.write("environment.concat_guarded((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with every operator, call and filter under the budget."""

    code_generator_class = _Generator
    intercepted_binops = frozenset(["*", "**", "+", "%"])

    def concat_guarded(self, parts: tuple[Any, ...]) -> str:
        _BUDGET.tick()
        return str(_sized("".join(str(p) for p in parts)))

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        _BUDGET.tick()
        if operator_name == "**":
            if isinstance(right, (int, float)) and abs(right) > 64:
                raise SecurityError("exponent too large in chat template")
            return operator.pow(left, right)
        if operator_name == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and n * max(1, len(seq)) > MAX_REPEAT:
                    raise SecurityError("repetition too large in chat template")
            return operator.mul(left, right)
        if operator_name == "%" and isinstance(left, str):
            _check_widths(left)
        if operator_name == "+" and isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
            if len(left) + len(right) > MAX_STRING:
                raise SecurityError(f"the template made a value longer than {MAX_STRING:,}")
        return _sized(super().call_binop(context, operator_name, left, right))

    def wrap_str_format(self, value: Any) -> Any:
        """`str.format` as the sandbox runs it, refused up front for huge widths."""
        if isinstance(getattr(value, "__self__", None), str):
            _check_widths(value.__self__)
        return super().wrap_str_format(value)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 - Jinja's
        _BUDGET.tick()
        name = getattr(__obj, "__name__", "")
        if isinstance(getattr(__obj, "__self__", None), str):
            if name in _GROWING_METHODS and any(isinstance(a, int) and a > MAX_WIDTH for a in args):
                raise SecurityError(f"a width over {MAX_WIDTH:,} in a template")
            if name in ("format", "format_map"):
                _check_widths(__obj.__self__)
        return _sized(super().call(__context, __obj, *args, **kwargs))


class RefusedByTemplate(TemplateError):
    """The template's own `raise_exception`: it does not accept this conversation (not a fault of its code)."""


def _raise_exception(message: str) -> None:
    raise RefusedByTemplate(f"the chat template refused the conversation: {message}")


def _tojson(value: Any, indent: int | None = None, ensure_ascii: bool = False, **_: Any) -> str:
    if indent is not None and (not isinstance(indent, int) or not 0 <= indent <= 16):
        raise SecurityError("tojson indent must be between 0 and 16")
    return str(_sized(json.dumps(value, indent=indent, ensure_ascii=ensure_ascii)))


def _capped_filter(name: str, fn: Any) -> Any:
    """Filter `name` under the budget: width arguments capped, a format string's widths checked, result sized."""
    positions = _WIDTH_ARGS.get(name, ())

    @functools.wraps(fn)  # keeps Jinja's pass_context/pass_environment marker
    def run(*args: Any, **kwargs: Any) -> Any:
        _BUDGET.tick()
        widths = [args[i] for i in positions if i < len(args)] + [kwargs.get("width"), kwargs.get("indent")]
        if any(isinstance(w, int) and w > MAX_WIDTH for w in widths):
            raise SecurityError(f"a width over {MAX_WIDTH:,} in a template filter")
        if name == "format" and args:
            _check_widths(args[0])
        return _sized(fn(*args, **kwargs))

    return run


_WIDTH_ARGS = {"center": (1,), "indent": (1,), "wordwrap": (2,)}  # where each filter takes its width


def _environment() -> _Sandbox:
    env = _Sandbox(trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    env.globals["range"] = _guarded_range
    for name, fn in list(env.filters.items()):
        env.filters[name] = _capped_filter(name, fn)
    env.filters["tojson"] = _tojson
    return env


_ENV = _environment()


def refuse_unusable(source: str | None, model: str) -> None:
    """TemplateError if a model's own chat template fails on an ordinary conversation, so it is not stored."""
    if not source:
        return
    try:
        ChatTemplate(source).trial()
    except TemplateError as err:
        raise TemplateError(f"the chat template inside {model} cannot be used: {err.message}",
                            hint="use another file of this model, or give it a template with `hearth create`"
                            ) from None


class ChatTemplate:
    """A compiled chat template plus the special-token texts it may reference."""

    def __init__(self, source: str | None, *, bos_token: str = "", eos_token: str = "") -> None:
        self.is_fallback = not source
        self.source = source or FALLBACK_TEMPLATE
        self.bos_token = bos_token
        self.eos_token = eos_token
        _BUDGET.steps, _BUDGET.deadline = 0, time.monotonic() + MAX_SECONDS  # Jinja folds constants now
        try:
            self._compiled = _ENV.from_string(self.source)
        except jinja2.TemplateSyntaxError as err:
            raise TemplateError(f"the chat template has a syntax error (line {err.lineno}): {err.message}") from err
        except Exception as err:  # a constant expression that fails while Jinja folds it, MemoryError included
            raise TemplateError(f"the chat template cannot be compiled: {type(err).__name__}: {err}") from err

    @property
    def supports_tools(self) -> bool:
        """True if the template renders a `tools` list itself."""
        return "tools" in self.source

    def render(self, messages: list[Message], *, add_generation_prompt: bool = True,
               tools: list[dict[str, Any]] | None = None, extra: dict[str, Any] | None = None) -> str:
        """The prompt text for `messages`, ending with the assistant's turn opener."""
        payload = _Guarded(m.to_template() for m in messages)
        _BUDGET.steps, _BUDGET.deadline = 0, time.monotonic() + MAX_SECONDS
        try:
            out: list[str] = []
            size = 0
            for chunk in self._compiled.generate(
                    messages=payload, add_generation_prompt=add_generation_prompt, bos_token=self.bos_token,
                    eos_token=self.eos_token, tools=_Guarded(tools) if tools is not None else None,
                    **(extra or {})):
                size += len(chunk)
                if size > MAX_OUTPUT_CHARS:
                    raise TemplateError("the chat template produced an implausibly long prompt")
                out.append(chunk)
                _BUDGET.tick()
        except TemplateError:
            raise
        except SecurityError as err:
            raise TemplateError(f"the chat template went over its budget or tried something unsafe: {err}") from err
        except Exception as err:  # anything else the template's code raised, MemoryError included
            raise TemplateError(f"the chat template failed to render: {type(err).__name__}: {err}") from err
        finally:
            _BUDGET.deadline = float("inf")
        return "".join(out)

    def trial(self) -> None:
        """Render a small sample conversation (with a tool), so a template that fails is refused up front."""
        sample = [Message("system", "You are helpful."), Message("user", "Hello"), Message("assistant", "Hi!"),
                  Message("user", "What is the weather in Paris?")]
        tool = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                                 "parameters": {"type": "object", "properties": {
                                                     "city": {"type": "string"}}}}}
        for messages, tools in ((sample, None), (sample[1:], None), (sample[1:], [tool])):
            if tools and not self.supports_tools:
                continue
            try:
                self.render(messages, tools=tools)
            except RefusedByTemplate:  # its own rule (no system prompt, say): not a broken template
                continue
