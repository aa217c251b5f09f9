"""Helpers shared by the CLI commands: the service, option parsing, errors and timing output."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, NoReturn

import click

from hearth.errors import HearthError, InvalidOptionError
from hearth.options import Options, coerce_cli_value, parse_options
from hearth.types import Stats

if TYPE_CHECKING:
    from hearth.service import Hearth

_SERVICE: Hearth | None = None


def service() -> Hearth:
    """The process's one `Hearth` service (created on first use, so `--help` stays fast)."""
    global _SERVICE
    if _SERVICE is None:
        from hearth.config import load_settings
        from hearth.service import Hearth

        # one person at a terminal: one slot, so no KV cache is reserved for parallel requests
        _SERVICE = Hearth(load_settings({"num_parallel": 1}))
        if sys.stderr.isatty():  # measuring a model's settings on its first load takes seconds: say so
            _SERVICE.set_notice(lambda line: click.secho(line, dim=True, err=True))
    return _SERVICE


def close_service() -> None:
    """Stop the service's workers before the process exits (else they die of multiprocessing's exit hook)."""
    global _SERVICE
    if _SERVICE is not None:
        _SERVICE, closing = None, _SERVICE
        closing.close()


def print_engine(model: str) -> None:
    """The engine settings `model` runs with and why, on stderr (after `--verbose` timings)."""
    remote = service().remote(model)
    if remote is not None:
        click.echo(f"{'engine:':<22}remote: {remote.where} ({remote.server}, {remote.api} API)", err=True)
        return
    engine, _ = service().engine_settings(model)
    click.echo(f"{'engine settings:':<22}{engine.describe()}", err=True)


def fail(err: HearthError) -> NoReturn:
    """Print an error as a sentence (and its hint) and exit with status 1."""
    click.secho(f"Error: {err.message}", fg="red", err=True)
    if err.hint:
        click.echo(f"Hint: {err.hint}", err=True)
    sys.exit(1)


def parse_option_pairs(pairs: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """`("temperature=0", "stop=###")` → `{"temperature": 0, "stop": ["###"]}` (stop may repeat)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidOptionError(f"--option expects key=value, got {pair!r}", hint="e.g. --option temperature=0")
        if key == "stop":
            out.setdefault("stop", []).append(value)
        else:
            out[key] = coerce_cli_value(value)
    return out


def cli_options(pairs: tuple[str, ...] | list[str]) -> Options:
    """`--option key=value` pairs parsed into `Options` (a bad one is an InvalidOptionError, before any load)."""
    return parse_options(parse_option_pairs(pairs))


def print_stats(stats: Stats) -> None:
    """Timings after an answer, in Ollama's `--verbose` format (on stderr)."""
    lines = [
        ("total duration", _duration(stats.total_ns + stats.load_ns)),
        ("load duration", _duration(stats.load_ns)),
        ("prompt eval count", f"{stats.prompt_tokens} token(s)"),
        ("prompt eval duration", _duration(stats.prompt_ns)),
        ("prompt eval rate", f"{stats.prompt_rate:.2f} tokens/s"),
        ("eval count", f"{stats.completion_tokens} token(s)"),
        ("eval duration", _duration(stats.eval_ns)),
        ("eval rate", f"{stats.eval_rate:.2f} tokens/s"),
    ]
    if stats.cached_tokens:
        lines.insert(3, ("prompt cache count", f"{stats.cached_tokens} token(s)"))
    if stats.draft_tokens:
        rate = 100 * stats.accepted_tokens / stats.draft_tokens
        lines.append(("draft count", f"{stats.draft_tokens} token(s)"))
        lines.append(("draft accepted", f"{stats.accepted_tokens} token(s) ({rate:.0f}%)"))
    for label, value in lines:
        click.echo(f"{label + ':':<22}{value}", err=True)


def _duration(ns: int) -> str:
    if ns >= 1_000_000_000:
        return f"{ns / 1e9:.3f}s"
    if ns >= 1_000_000:
        return f"{ns / 1e6:.3f}ms"
    return f"{ns / 1e3:.3f}µs"
