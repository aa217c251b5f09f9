"""Hearth's settings: one object, layered flag > environment (`HEARTH_*`) > config file > default.

Each field's description feeds `hearth serve --help` and docs/configuration.md. The config file is
`$HEARTH_HOME/config.toml` with the same names as the fields (e.g. `keep_alive = "10m"`).
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from hearth.errors import InvalidOptionError
from hearth.paths import hearth_home

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _doc(text: str, default: Any) -> Any:
    return field(default=default, metadata={"doc": text})


@dataclass(frozen=True)
class Settings:
    """Every knob Hearth has, with its default."""

    host: str = _doc("Address the server listens on (HEARTH_HOST may be host:port).", "127.0.0.1")
    port: int = _doc("Port the server listens on.", 11435)
    api_key: str | None = _doc("Require `Authorization: Bearer KEY` on every request (needed off loopback).", None)
    cors_origins: tuple[str, ...] = _doc("Browser origins allowed to call the API (comma-separated).", ())
    allowed_hosts: tuple[str, ...] = _doc("Extra Host header values accepted besides loopback names.", ())
    lan: str = _doc("Also listen on this LAN address for phones and other computers (auto: this machine's own); "
                    "they use the web page after pairing with a one-time code (`hearth devices pair`).", "")
    keep_alive: float = _doc("Seconds a model stays loaded after its last request (-1 = forever).", 300.0)
    max_loaded_models: int = _doc("How many models may be loaded at once.", 2)
    num_parallel: int = _doc("Requests one model decodes together (slots per model).", 4)
    max_queue: int = _doc("Requests that may wait per model before new ones get 503.", 16)
    memory_budget: int = _doc("Bytes loaded models may use (0 = 80% of total RAM).", 0)
    prompt_cache_bytes: int = _doc("RAM per model for saved conversation states (prompt cache; 0 = off).",
                                   256 << 20)
    num_ctx: int = _doc("Context tokens per request (0 = sized to the model and free memory).", 0)
    num_threads: int = _doc("Threads for decoding (0 = measured on this machine the first time a model of a new "
                            "shape loads; physical cores until then).", 0)
    num_batch: int = _doc("Prompt tokens llama.cpp evaluates per step (0 = measured, 512 until then).", 0)
    flash_attention: str = _doc("llama.cpp's flash attention: measure (whichever is faster here, found by "
                                "measuring), on, off, or auto (llama.cpp's choice). Without a measurement: off.",
                                "measure")
    tune: bool = _doc("Measure the settings left to measurement (flash_attention, num_threads, num_batch) the "
                      "first time a model of a new shape loads: a few seconds, once per CPU, llama.cpp build "
                      "and model shape (`hearth tune` measures again).", True)
    kv_cache_type: str = _doc("Element type of the KV cache: f16, q8_0 (half the memory) or q4_0 (a quarter); "
                              "quantized caches need flash attention (measure or on chooses it for them).", "f16")
    speculative: str = _doc("Speculative decoding (docs/speculative.md): ngram (drafts copied from earlier in the "
                            "prompt and answer), draft (drafts from draft_model), off, or auto (ngram when flash "
                            "attention is on, off otherwise).", "auto")
    draft_max: int = _doc("Most tokens drafted per sequence and step; fewer (or none) while drafts are rarely "
                          "accepted.", 16)
    draft_model: str | None = _doc("A model with the same vocabulary that drafts for the others when speculative = "
                                   "draft (a Modelfile's PARAMETER draft_model sets one per model).", None)
    rpc_workers: tuple[str, ...] = _doc("RPC workers (`hearth rpc-worker`) to spread each model over, as host:port "
                                        "(comma-separated): its layers are shared between this machine and "
                                        "them in proportion to their memory (docs/rpc.md).", ())
    max_body_bytes: int = _doc("Largest request body the server accepts.", 8 * 1024 * 1024)
    request_timeout: float = _doc("Seconds a client may take to send a request's headers, or to send each part "
                                  "of its body, before the server gives up on it.", 30.0)
    max_connections: int = _doc("Connections the server serves at once; more are answered 503.", 128)
    history: bool = _doc("Record conversations in the local history database (false = record nothing).", True)
    history_days: int = _doc("Delete conversations not touched for this many days (0 = keep forever).", 0)
    embedding_model: str = _doc("Model that embeds passages and questions for `hearth docs` and chats with documents "
                                "(a local embedding GGUF such as all-minilm); empty: the first embedding model "
                                "installed; none: BM25 keyword search alone.", "")
    docs_budget: int = _doc("Prompt tokens the retrieved passages may take in a chat with documents (at most half "
                            "the context).", 1500)
    offline: bool = _doc("Offline mode: block every connection and name lookup that is not loopback, in Hearth and "
                         "its workers, and refuse commands that need the network (docs/privacy.md).", False)
    download_hosts: tuple[str, ...] = _doc(
        "Hosts a pull may be redirected to besides HF_ENDPOINT's own (comma-separated; *.example.com matches its "
        "subdomains): https only, never loopback or private addresses. An entry with a scheme "
        "(http://127.0.0.1:9000, a local mirror's file server) is trusted exactly as written.",
        ("hf.co", "*.hf.co", "huggingface.co", "*.huggingface.co"))

    def merged(self, overrides: dict[str, Any]) -> Settings:
        """A copy with non-None `overrides` applied (values converted from strings where needed)."""
        return replace(self, **{k: _convert(k, v) for k, v in overrides.items() if v is not None})


_TYPES = {f.name: f.type for f in fields(Settings)}
_RANGES = {"num_threads": (0, 1024), "num_batch": (0, 65536), "docs_budget": (100, 1_000_000),
           "draft_max": (1, 64)}
_CHOICES = {"flash_attention": ("measure", "auto", "on", "off"), "kv_cache_type": ("f16", "q4_0", "q8_0"),
            "speculative": ("auto", "off", "ngram", "draft")}


def describe() -> list[tuple[str, str, Any]]:
    """(name, description, default) for every setting: the source of the docs and --help."""
    return [(f.name, f.metadata["doc"], f.default) for f in fields(Settings)]


def load_settings(flags: dict[str, Any] | None = None, *, home: Path | None = None) -> Settings:
    """Build the settings from the config file, then `HEARTH_*` variables, then command-line flags."""
    settings = Settings()
    path = (home or hearth_home()) / "config.toml"
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise InvalidOptionError(f"{path} is not valid TOML: {err}") from err
        unknown = set(data) - set(_TYPES)
        if unknown:
            raise InvalidOptionError(f"{path}: unknown setting(s) {', '.join(sorted(unknown))}")
        settings = settings.merged(data)
    env: dict[str, Any] = {}
    for name in _TYPES:
        value = os.environ.get("HEARTH_" + name.upper())
        if value is not None and value != "":
            env[name] = value
    if isinstance(env.get("host"), str):
        env["host"], port = split_host(env["host"])
        if port is not None:
            env["port"] = port
    settings = settings.merged(env)
    return settings.merged(flags or {})


def split_host(value: str) -> tuple[str, str | None]:
    """`host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address → (host, port or None)."""
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        if rest.startswith(":") and rest[1:]:
            return host, rest[1:]
        if rest:
            raise InvalidOptionError(f"cannot read {value!r} as host:port", field="host",
                                     hint="write an IPv6 address with a port as [::1]:8080")
        return host, None
    if value.count(":") == 1:
        host, port = value.split(":")
        return host, port
    return value, None  # a name, an IPv4 address, or a bare IPv6 address such as ::1


def _convert(name: str, value: Any) -> Any:
    kind = str(_TYPES.get(name, ""))
    if name not in _TYPES:
        raise InvalidOptionError(f"unknown setting {name!r}")
    try:
        if name == "keep_alive":
            return parse_duration(value)
        if kind.startswith("tuple"):
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(str(i).strip() for i in items if str(i).strip())
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError
            return _in_range(name, int(value))
        if kind == "bool":
            return _boolean(value)
        if kind == "float":
            number = float(value)
            if isinstance(value, bool) or not math.isfinite(number) or number <= 0:
                raise ValueError
            return number
        if name in _CHOICES:
            text = str(value).strip().lower()
            if text not in _CHOICES[name]:
                raise InvalidOptionError(f"setting {name!r} must be one of {', '.join(_CHOICES[name])}, "
                                         f"not {value!r}", field=name)
            return text
        return value if value is None else str(value)
    except (TypeError, ValueError):
        raise InvalidOptionError(f"setting {name!r} has an invalid value {value!r}", field=name) from None


def _in_range(name: str, number: int) -> int:
    low, high = _RANGES.get(name, (None, None))
    if low is not None and high is not None and not low <= number <= high:
        raise InvalidOptionError(f"setting {name!r} must be between {low} and {high}, not {number}", field=name)
    return number


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(value)


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: Any) -> float:
    """Seconds from Ollama-style durations: 300, "300", "5m", "1h30m", "-1" (forever), "0" (at once)."""
    if isinstance(value, bool):
        raise InvalidOptionError("keep_alive must be a duration like '5m' or a number of seconds", field="keep_alive")
    if isinstance(value, (int, float)):
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidOptionError("keep_alive must be finite", field="keep_alive")
        return -1.0 if value < 0 else float(value)
    text = str(value).strip().lower()
    try:
        return parse_duration(float(text))
    except ValueError:
        pass
    total, number, negative = 0.0, "", text.startswith("-")
    rest = text.lstrip("-")
    i = 0
    while i < len(rest):
        ch = rest[i]
        if ch.isdigit() or ch == ".":
            number += ch
            i += 1
            continue
        unit = "ms" if rest.startswith("ms", i) else ch
        if unit not in _UNITS or not number:
            raise InvalidOptionError(f"keep_alive {value!r} is not a duration like '5m' or '1h30m'", field="keep_alive")
        total += float(number) * _UNITS[unit]
        number, i = "", i + len(unit)
    if number:
        raise InvalidOptionError(f"keep_alive {value!r} needs a unit (s, m or h)", field="keep_alive")
    return -1.0 if negative else total
