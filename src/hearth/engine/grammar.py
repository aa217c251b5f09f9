"""JSON output constraints as llama.cpp GBNF grammars, for `format: "json"` and JSON schemas.

The converter is llama-cpp-python's `llama_cpp/llama_grammar.py`, a pure-Python port of llama.cpp's
`json-schema-to-grammar`. Importing it the usual way would run `llama_cpp/__init__.py`, which loads the
native library; processes that must never hold llama.cpp (the HTTP server) would then hold it. So the one
file is loaded on its own, by path, found with `importlib.util.find_spec` (which does not run the package).
The grammar string then travels to the worker in `Job.options.grammar`, where llama.cpp parses it.
"""

from __future__ import annotations

import importlib.util
import json
import re
import threading
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

from hearth.errors import InvalidRequestError

MAX_SCHEMA_BYTES = 64 << 10
MAX_GRAMMAR_BYTES = 256 << 10
MAX_DEPTH = 64
MAX_COUNT = 1000  # largest minLength/maxItems/... and regex {n}: the converter expands them inline
MAX_PATTERN_REPEAT = 100_000  # product of the {n} quantifiers in one pattern
_COUNT_KEYS = {"minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties",
               "minContains", "maxContains"}
_QUANTIFIER = re.compile(r"\{(\d+)(?:,(\d*))?\}")


@lru_cache(maxsize=1)
def _converter() -> ModuleType:
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        raise InvalidRequestError("JSON output needs the llama-cpp-python package, which is not installed")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "llama_grammar.py"
        if path.is_file():
            module_spec = importlib.util.spec_from_file_location("hearth_llama_grammar", path)
            assert module_spec is not None and module_spec.loader is not None
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
            return module
    raise InvalidRequestError("llama-cpp-python's grammar converter was not found")


# which JSON schema (or "json") each grammar was made from, so a request forwarded to a remote server can
# carry the schema itself rather than llama.cpp's grammar (bounded: the most recent ones)
_SOURCES: OrderedDict[str, Any] = OrderedDict()
_SOURCES_KEPT = 256
_SOURCES_LOCK = threading.Lock()


def json_grammar() -> str:
    """A grammar for any JSON object (`format: "json"`, `response_format: {"type": "json_object"}`)."""
    return _remember(str(_converter().JSON_GBNF), "json")


def grammar_source(grammar: str | None) -> Any:
    """The JSON schema (a dict) or "json" a grammar was made from here; None for one written by hand."""
    return None if grammar is None else _SOURCES.get(grammar)


def _remember(grammar: str, source: Any) -> str:
    with _SOURCES_LOCK:
        _SOURCES[grammar] = source
        _SOURCES.move_to_end(grammar)
        while len(_SOURCES) > _SOURCES_KEPT:
            _SOURCES.popitem(last=False)
    return grammar


def schema_grammar(schema: Any, *, field: str = "format") -> str:
    """A grammar that only admits JSON matching `schema`; InvalidRequestError naming `field` if unusable."""
    if not isinstance(schema, dict):
        raise InvalidRequestError("a JSON schema must be an object", field=field)
    try:
        text = json.dumps(schema, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        raise InvalidRequestError("the JSON schema is not valid JSON", field=field) from None
    if len(text) > MAX_SCHEMA_BYTES:
        raise InvalidRequestError(f"the JSON schema is larger than {MAX_SCHEMA_BYTES // 1024} KiB", field=field)
    _check_bounds(schema, field)
    try:
        grammar = str(_converter().json_schema_to_gbnf(text))
    except RecursionError:
        raise InvalidRequestError("the JSON schema is nested too deeply", field=field) from None
    except Exception as err:  # the converter raises ValueError, KeyError, TypeError, AssertionError...
        reason = str(err)[:200] or type(err).__name__
        raise InvalidRequestError(f"the JSON schema is not supported: {reason}", field=field) from None
    if len(grammar) > MAX_GRAMMAR_BYTES:
        raise InvalidRequestError("the JSON schema expands to a grammar that is too large", field=field)
    return _remember(grammar, json.loads(text))


def _check_bounds(schema: dict[str, Any], field: str) -> None:
    """Refuse schemas whose counts would make the converter (or llama.cpp's parser) build huge grammars."""
    stack: list[tuple[Any, int]] = [(schema, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidRequestError(f"the JSON schema is nested more than {MAX_DEPTH} levels deep", field=field)
        if isinstance(node, list):
            stack.extend((item, depth + 1) for item in node)
            continue
        if not isinstance(node, dict):
            continue
        for key, value in node.items():
            if key in _COUNT_KEYS and isinstance(value, (int, float)) and value > MAX_COUNT:
                raise InvalidRequestError(
                    f"'{key}' in the JSON schema is {value}; at most {MAX_COUNT} is supported", field=field)
            if key == "pattern" and isinstance(value, str):
                _check_pattern(value, field)
            stack.append((value, depth + 1))


def _check_pattern(pattern: str, field: str) -> None:
    product = 1
    for match in _QUANTIFIER.finditer(pattern):
        numbers = [int(n) for n in match.groups() if n]
        if any(n > MAX_COUNT for n in numbers):
            raise InvalidRequestError(f"a pattern in the JSON schema repeats more than {MAX_COUNT} times",
                                      field=field)
        product *= max(numbers + [1])
        if product > MAX_PATTERN_REPEAT:
            raise InvalidRequestError("a pattern in the JSON schema repeats too much", field=field)
