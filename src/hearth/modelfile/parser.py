"""Ollama's Modelfile syntax, read into a `Modelfile` with the line of every instruction.

    # a comment
    FROM smollm2:135m                 a model name, or a GGUF file (relative to the Modelfile's folder)
    SYSTEM You are a pirate.          the rest of the line...
    SYSTEM \"\"\"Several               ...or a value in triple quotes, over several lines,
    lines\"\"\"                          ...or in plain double quotes
    PARAMETER temperature 0.7         Ollama's option names; `stop` may repeat
    TEMPLATE \"\"\"...\"\"\"                Ollama's Go template syntax, or Jinja
    MESSAGE user Hello                seed turns (system, user or assistant)
    ADAPTER ./lora.gguf               a LoRA adapter in GGUF format
    LICENSE \"\"\"...\"\"\"

Instruction names are case-insensitive, values have no escape sequences (as in Ollama). Every mistake is
a `ModelfileError` naming the line, so `hearth create` and `POST /api/create` can point at it.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hearth.errors import InvalidOptionError, InvalidRequestError
from hearth.options import IGNORED_OPTIONS, MODEL_PARAMETERS, OPTION_NAMES, coerce_cli_value, parse_options
from hearth.types import Message

INSTRUCTIONS = ("FROM", "PARAMETER", "SYSTEM", "TEMPLATE", "MESSAGE", "ADAPTER", "LICENSE")
UNSUPPORTED = {
    "DRAFT": "speculative decoding with a draft model is not supported yet",
    "RENDERER": "Ollama's built-in renderers do not exist in Hearth; use TEMPLATE",
    "PARSER": "Ollama's built-in output parsers do not exist in Hearth",
}
ROLES = ("system", "user", "assistant")
NO_EFFECT = IGNORED_OPTIONS  # accepted for compatibility with Ollama Modelfiles, but they change nothing
MAX_MODELFILE_CHARS = 4 << 20
SPACE = " \t"


class ModelfileError(InvalidRequestError):
    """A Modelfile that cannot be used; `line` is the 1-based line of the problem."""

    def __init__(self, line: int, message: str, *, hint: str | None = None) -> None:
        super().__init__(f"Modelfile line {line}: {message}", hint=hint, field="modelfile")
        self.line = line
        self.detail = message  # the message without its line


@dataclass(frozen=True)
class Value:
    """An instruction's argument and the line where the instruction starts."""

    text: str
    line: int


@dataclass
class Modelfile:
    """A parsed Modelfile: what each instruction asked for, with its line."""

    base: Value
    system: Value | None = None
    template: Value | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    parameter_lines: dict[str, int] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)
    adapters: list[Value] = field(default_factory=list)
    licenses: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def parse_modelfile(text: str) -> Modelfile:
    """Parse Modelfile `text`; ModelfileError (with the line) if it is malformed."""
    if len(text) > MAX_MODELFILE_CHARS:
        raise ModelfileError(1, f"the Modelfile is longer than {MAX_MODELFILE_CHARS} characters")
    builder = _Builder()
    for name, argument, value in _Scanner(text.lstrip("\ufeff").replace("\r\n", "\n")).instructions():
        builder.add(name, argument, value)
    return builder.finish()


def modelfile_from_fields(base: Any, *, system: str | None = None, template: str | None = None,
                          parameters: dict[str, Any] | None = None, messages: list[Any] | None = None,
                          licenses: list[str] | None = None) -> Modelfile:
    """A Modelfile from structured fields (Ollama's `/api/create`), checked as the parser checks text.

    Nothing is pasted into Modelfile text and parsed again, so a system prompt holding `\"\"\"` stays
    one system prompt. A bad field raises InvalidRequestError naming it.
    """
    if not isinstance(base, str) or not base.strip():
        raise InvalidRequestError("'from' (the base model) or 'modelfile' is required", field="from")
    builder = _Builder()
    steps: list[tuple[str, str, str | None, Any]] = [("from", "FROM", None, base.strip())]
    if system is not None:
        steps.append(("system", "SYSTEM", None, system))
    if template is not None:
        steps.append(("template", "TEMPLATE", None, template))
    for i, item in enumerate(messages or []):
        role, content = (item.get("role"), item.get("content")) if isinstance(item, dict) else (None, None)
        if not isinstance(role, str) or not isinstance(content, str):
            raise InvalidRequestError(f"messages[{i}] needs a role and a content", field=f"messages[{i}]")
        steps.append((f"messages[{i}]", "MESSAGE", role, content))
    steps += [("license", "LICENSE", None, text) for text in licenses or []]
    if not isinstance(parameters or {}, dict):
        raise InvalidRequestError("parameters must be an object of name: value pairs", field="parameters")
    for key, value in (parameters or {}).items():
        steps += [(f"parameters.{key}", "PARAMETER", key, item) for item in (value if isinstance(value, list)
                                                                              else [value])]
    for where, name, argument, value in steps:
        try:
            if name == "PARAMETER":
                builder.parameter(0, str(argument), value)
            else:
                builder.add(Value(name, 0), argument, Value(value, 0))
        except ModelfileError as err:
            raise InvalidRequestError(err.detail, hint=err.hint, field=where) from None
    return builder.finish()


class _Scanner:
    """Splits Modelfile text into (INSTRUCTION, argument, value) triples, tracking line numbers."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1

    def instructions(self) -> list[tuple[Value, str | None, Value]]:
        found = []
        while self._skip_blank():
            name = self._word(str.isalpha)
            if not name.text or self._peek() not in (" ", "\t", "\n", ""):
                bad = self._rest_of_line().strip().split()
                raise ModelfileError(self.line, f"{(name.text + (bad[0] if bad else ''))[:40]!r} is not an "
                                     "instruction", hint=_instruction_hint(name.text))
            self._spaces()
            argument = None
            upper = name.text.upper()
            if upper in ("PARAMETER", "MESSAGE"):
                argument = self._word(lambda c: c.isalnum() or c == "_").text
                if not argument:
                    what = "an option name" if upper == "PARAMETER" else "a role"
                    raise ModelfileError(name.line, f"{upper} needs {what} and a value")
                self._spaces()
            found.append((name, argument, self._value(name)))
        return found

    def _peek(self) -> str:
        return self.text[self.pos:self.pos + 1]

    def _skip_blank(self) -> bool:
        """Skip blank lines and comments; False at the end of the text."""
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\n":
                self.line += 1
                self.pos += 1
            elif char in SPACE:
                self.pos += 1
            elif char == "#":
                self._rest_of_line()
            else:
                return True
        return False

    def _spaces(self) -> None:
        while self._peek() and self._peek() in SPACE:
            self.pos += 1

    def _word(self, allowed: Callable[[str], bool]) -> Value:
        start = self.pos
        while self.pos < len(self.text) and allowed(self.text[self.pos]):
            self.pos += 1
        return Value(self.text[start:self.pos], self.line)

    def _rest_of_line(self) -> str:
        end = self.text.find("\n", self.pos)
        end = len(self.text) if end < 0 else end
        rest, self.pos = self.text[self.pos:end], end
        return rest

    def _value(self, name: Value) -> Value:
        start_line = self.line
        for quote in ('"""', '"'):
            if self.text.startswith(quote, self.pos):
                end = self.text.find(quote, self.pos + len(quote))
                if end < 0:
                    raise ModelfileError(start_line, f"the {quote} quote opened here is never closed",
                                         hint=f"end the value of {name.text.upper()} with {quote}")
                value = self.text[self.pos + len(quote):end]
                self.line += value.count("\n")
                self.pos = end + len(quote)
                trailing = self._rest_of_line().strip()
                if trailing:
                    raise ModelfileError(self.line, f"unexpected text {trailing[:40]!r} after the closing quote")
                return Value(value, start_line)
        return Value(self._rest_of_line().strip(), start_line)


class _Builder:
    """Checks instructions one at a time and collects them into a Modelfile."""

    def __init__(self) -> None:
        self.base: Value | None = None
        self.file = Modelfile(base=Value("", 0))

    def add(self, name: Value, argument: str | None, value: Value) -> None:
        upper = name.text.upper()
        if upper in UNSUPPORTED:
            raise ModelfileError(name.line, f"{upper} is not supported: {UNSUPPORTED[upper]}")
        if upper == "REQUIRES":
            self.file.warnings.append(f"line {name.line}: REQUIRES (an Ollama version) is ignored")
            return
        if upper not in INSTRUCTIONS:
            raise ModelfileError(name.line, f"unknown instruction {name.text!r}", hint=_instruction_hint(name.text))
        if not value.text and upper != "SYSTEM":  # an empty SYSTEM clears the base model's
            raise ModelfileError(name.line, f"{upper} needs a value")
        getattr(self, "_" + upper.lower())(name.line, argument, value)

    def finish(self) -> Modelfile:
        if self.base is None:
            raise ModelfileError(1, "there is no FROM instruction",
                                 hint="start with e.g. `FROM smollm2:135m` (a model name or a GGUF file)")
        self.file.base = self.base
        return self.file

    def _from(self, line: int, _: str | None, value: Value) -> None:
        if self.base is not None:
            raise ModelfileError(line, f"a second FROM (the first is on line {self.base.line})",
                                 hint="a Modelfile describes one model; keep one FROM")
        self.base = value

    def _system(self, line: int, _: str | None, value: Value) -> None:
        self.file.system = value

    def _template(self, line: int, _: str | None, value: Value) -> None:
        self.file.template = value

    def _license(self, line: int, _: str | None, value: Value) -> None:
        self.file.licenses.append(value.text)

    def _adapter(self, line: int, _: str | None, value: Value) -> None:
        self.file.adapters.append(value)

    def _message(self, line: int, role: str | None, value: Value) -> None:
        role = (role or "").lower()
        if role not in ROLES:
            raise ModelfileError(line, f"MESSAGE role {role!r} is not one of {', '.join(ROLES)}",
                                 hint="e.g. MESSAGE user Hello")
        self.file.messages.append(Message(role, value.text))

    def _parameter(self, line: int, key: str | None, value: Value) -> None:
        self.parameter(line, key or "", value.text)

    def parameter(self, line: int, key: str, value: Any) -> None:
        """Set option `key` to `value` (text is read as a number or flag where the option wants one)."""
        key = key.lower()
        if key in NO_EFFECT:
            where = f"line {line}: " if line else ""
            self.file.warnings.append(f"{where}PARAMETER {key} has no effect in Hearth and is ignored")
            return
        if key in MODEL_PARAMETERS:  # draft_model NAME: checked when the model is created and loaded
            if not isinstance(value, str) or not value.strip():
                raise ModelfileError(line, f"PARAMETER {key} needs a model name",
                                     hint=f"e.g. PARAMETER {key} smollm2:135m")
            self.file.parameters[key] = value.strip()
            self.file.parameter_lines.setdefault(key, line)
            return
        if key not in OPTION_NAMES:
            close = difflib.get_close_matches(key, OPTION_NAMES, n=1)
            raise ModelfileError(line, f"unknown PARAMETER {key!r}",
                                 hint=f"did you mean {close[0]}?" if close else "known: " + ", ".join(OPTION_NAMES))
        raw: Any = value if key in ("stop", "grammar") or not isinstance(value, str) else coerce_cli_value(value)
        if key == "stop":
            raw = [*self.file.parameters.get("stop", []), raw]
        try:
            parse_options({key: raw})
        except InvalidOptionError as err:
            raise ModelfileError(line, err.message, hint=err.hint) from None
        self.file.parameters[key] = raw
        self.file.parameter_lines.setdefault(key, line)


def _instruction_hint(word: str) -> str:
    close = difflib.get_close_matches(word.upper(), INSTRUCTIONS, n=1)
    known = "instructions: " + ", ".join(INSTRUCTIONS)
    return f"did you mean {close[0]}? ({known})" if close else known
