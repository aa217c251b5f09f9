"""Generation options: Ollama's option names, validated once at the boundary, typed from there on.

`parse_options` is the one place where options from the CLI (`--option key=value`), the Ollama API
(`options: {...}`), the OpenAI API (converted by the server) and Modelfile `PARAMETER`s are checked. A bad
value raises `InvalidOptionError` naming the field, so the CLI prints a sentence and the server answers 400.

The result is an `Options` that remembers which fields were given (`given`), so a request's options can be
laid over a model's defaults later (`over`) without being parsed again. The same object travels to the
engine's worker inside its `Job`, where the sampler reads its fields.

Adding a sampler option: a field and its range here, the sampler in `hearth.engine.llama`, docs/usage.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

from hearth.errors import InvalidOptionError

MAX_STOP_SEQUENCES = 16
MAX_STOP_LENGTH = 256
MAX_CTX = 1 << 20
MAX_GRAMMAR_CHARS = 256 << 10
MAX_GRAMMAR_DEPTH = 100  # llama.cpp parses nested groups recursively; deep nesting overflows its stack


@dataclass(frozen=True)
class Options:
    """Sampling and context options for one generation (Ollama's names and defaults)."""

    temperature: float = 0.8
    top_k: int = 40
    top_p: float = 0.9
    min_p: float = 0.0
    typical_p: float = 1.0
    repeat_penalty: float = 1.1
    repeat_last_n: int = 64
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int | None = None
    num_predict: int = -1
    num_ctx: int | None = None
    stop: tuple[str, ...] = ()
    grammar: str | None = None
    given: frozenset[str] = field(default=frozenset(), compare=False, repr=False)  # the fields set explicitly

    def merged(self, overrides: dict[str, Any]) -> Options:
        """A copy with `overrides` (raw, unvalidated values) validated and applied."""
        checked = _validate(overrides)
        return replace(self, **checked, given=self.given | frozenset(checked))

    def over(self, base: Options) -> Options:
        """`base` with the fields given here laid on top (a request's options over a model's defaults)."""
        return replace(base, **{name: getattr(self, name) for name in self.given}, given=base.given | self.given)

    def with_(self, **values: Any) -> Options:
        """A copy with already-valid `values` set (and counted as given)."""
        return replace(self, **values, given=self.given | frozenset(values))

    def requested(self) -> dict[str, Any]:
        """The options that were given (not defaulted), as plain JSON-able values."""
        return {name: value for name, value in self.values().items() if name in self.given}

    def values(self) -> dict[str, Any]:
        """Every option and its value, as plain JSON-able values (for the history's record)."""
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
                for f in fields(self) if f.name != "given"}


_FLOAT_RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 100.0),
    "top_p": (0.0, 1.0),
    "min_p": (0.0, 1.0),
    "typical_p": (0.0, 1.0),
    "repeat_penalty": (0.0, 100.0),
    "presence_penalty": (-100.0, 100.0),
    "frequency_penalty": (-100.0, 100.0),
}
_INT_RANGES: dict[str, tuple[int, int]] = {
    "top_k": (0, 1_000_000),
    "repeat_last_n": (-1, MAX_CTX),
    "num_predict": (-2, MAX_CTX),
    "num_ctx": (16, MAX_CTX),
    "seed": (-(2**63), 2**64 - 1),
}
# Ollama accepts these for compatibility; Hearth has nothing to do with them per request.
IGNORED_OPTIONS = frozenset({
    "num_thread", "num_batch", "num_gpu", "main_gpu", "use_mmap", "use_mlock", "numa", "num_keep",
    "tfs_z", "mirostat", "mirostat_tau", "mirostat_eta", "penalize_newline", "low_vram", "f16_kv", "vocab_only",
    "logits_all", "embedding_only",
})
OPTION_NAMES = sorted({*_FLOAT_RANGES, *_INT_RANGES, "stop", "grammar"})
# Modelfile PARAMETERs that belong to the model, not to each request: kept in its manifest, read at load time.
MODEL_PARAMETERS = frozenset({"draft_model"})


def request_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    """A manifest's parameters without the model-level ones (`MODEL_PARAMETERS`): its default options."""
    return {k: v for k, v in parameters.items() if k not in MODEL_PARAMETERS}


def parse_options(raw: dict[str, Any] | None, base: Options | None = None,
                  names: dict[str, str] | None = None) -> Options:
    """Validate `raw` (Ollama option names) and return `base` (or defaults) with them applied.

    `names` maps a caller's own field names to option names (OpenAI's `max_tokens` → `num_predict`), so an
    error names the field the caller sent.
    """
    try:
        return (base or Options()).merged(raw or {})
    except InvalidOptionError as err:
        theirs = {native: outside for outside, native in (names or {}).items()}.get(err.field or "")
        if theirs is None:
            raise
        raise InvalidOptionError(err.message.replace(f"'{err.field}'", f"'{theirs}'"), hint=err.hint,
                                 field=theirs) from None


def _validate(raw: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidOptionError("options must be an object of name: value pairs", field="options")
    out: dict[str, Any] = {}
    for name, value in raw.items():
        if name in IGNORED_OPTIONS:
            continue
        if value is None:
            continue
        if name in _FLOAT_RANGES:
            out[name] = _number(name, value, _FLOAT_RANGES[name])
        elif name in _INT_RANGES:
            out[name] = _integer(name, value, _INT_RANGES[name])
        elif name == "stop":
            out[name] = _stops(value)
        elif name == "grammar":
            out[name] = _grammar(value)
        else:
            raise InvalidOptionError(
                f"unknown option {name!r}", field=str(name)[:64],
                hint="known options: " + ", ".join(OPTION_NAMES),
            )
    if out.get("seed") is not None and out["seed"] < 0:
        out["seed"] = None  # Ollama and llama.cpp treat a negative seed as "random"
    return out


def _number(name: str, value: Any, bounds: tuple[float, float]) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidOptionError(f"option {name!r} must be a number, not {type(value).__name__}", field=name)
    number = float(value)
    if not math.isfinite(number) or not bounds[0] <= number <= bounds[1]:
        raise InvalidOptionError(
            f"option {name!r} must be between {bounds[0]:g} and {bounds[1]:g}, not {value!r}", field=name
        )
    return number


def _integer(name: str, value: Any, bounds: tuple[int, int]) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidOptionError(f"option {name!r} must be an integer, not {value!r}"[:200], field=name)
    if not bounds[0] <= value <= bounds[1]:
        raise InvalidOptionError(
            f"option {name!r} must be between {bounds[0]} and {bounds[1]}, not {value}", field=name
        )
    return value


def _grammar(value: Any) -> str:
    """A GBNF grammar, refused when too long or nested too deep for llama.cpp's recursive parser."""
    if not isinstance(value, str):
        raise InvalidOptionError("option 'grammar' must be a string", field="grammar")
    if len(value) > MAX_GRAMMAR_CHARS:
        raise InvalidOptionError(f"the grammar is longer than {MAX_GRAMMAR_CHARS:,} characters", field="grammar")
    if grammar_depth(value) > MAX_GRAMMAR_DEPTH:
        raise InvalidOptionError(f"the grammar nests groups more than {MAX_GRAMMAR_DEPTH} deep", field="grammar")
    return value


def grammar_depth(text: str) -> int:
    """How deep a GBNF grammar nests parentheses (quoted literals, character classes and comments skipped)."""
    depth = deepest = 0
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char in "\"[":
            close = "\"" if char == "\"" else "]"
            i += 1
            while i < n and text[i] != close:
                i += 2 if text[i] == "\\" else 1
        elif char == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif char == ")":
            depth = max(0, depth - 1)
        i += 1
    return deepest


def _stops(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(s, str) for s in items):
        raise InvalidOptionError("option 'stop' must be a string or a list of strings", field="stop")
    if len(items) > MAX_STOP_SEQUENCES:
        raise InvalidOptionError(f"at most {MAX_STOP_SEQUENCES} stop sequences are allowed", field="stop")
    if any(len(s) > MAX_STOP_LENGTH for s in items):
        raise InvalidOptionError(f"stop sequences are limited to {MAX_STOP_LENGTH} characters", field="stop")
    return tuple(s for s in items if s)


def coerce_cli_value(text: str) -> Any:
    """Turn a CLI `key=value` string into a number, list or string (`stop=a,b` is not split)."""
    lowered = text.strip().lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            continue
    return text
