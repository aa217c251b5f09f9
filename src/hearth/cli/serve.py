"""`hearth serve`, and `hearth ps` / `hearth stop`, which ask the running server over HTTP.

`serve` takes one flag per setting (generated from `hearth.config.describe()`, so `--help` and the docs
say the same thing), except the API key, which is read from `HEARTH_API_KEY` or the config file so that it
never shows in the process list.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from typing import Any

import click

from hearth.config import Settings, describe, load_settings
from hearth.errors import HearthError, NotFoundError
from hearth.units import size_text

_SECRET = {"api_key"}
_FLAGS = {"offline"}  # `hearth serve --offline`, like `hearth --offline serve`
_REPEATABLE = {"cors_origins": "--cors-origin", "allowed_hosts": "--allowed-host"}


def _setting_options(command: Any) -> Any:
    for name, doc, default in reversed(describe()):
        if name in _SECRET:
            continue
        if name in _FLAGS:
            command = click.option("--" + name, name, is_flag=True, default=None, help=doc)(command)
            continue
        if name == "lan":  # `--lan` alone: this machine's own LAN address
            command = click.option("--lan", "lan", is_flag=False, flag_value="auto", default=None, metavar="[ADDRESS]",
                                   help=doc)(command)
            continue
        if name in _REPEATABLE:
            command = click.option(_REPEATABLE[name], name, multiple=True, metavar="VALUE",
                                   help=f"{doc} Repeatable.")(command)
            continue
        flag = "--" + name.replace("_", "-")
        command = click.option(flag, name, default=None, metavar="VALUE",
                               help=f"{doc} [default: {default}]")(command)
    return command


@click.command()
@click.option("--open", "open_page", is_flag=True, help="Open the chat page in a browser once the server is up.")
@_setting_options
def serve(open_page: bool, **flags: Any) -> None:
    """Serve the chat page and the OpenAI-, Anthropic- and Ollama-compatible APIs (127.0.0.1:11435)."""
    from hearth.cli.devices import announce
    from hearth.server import serve as run_server

    overrides = {k: (v or None) if isinstance(v, tuple) else v for k, v in flags.items()}
    host = overrides.get("host")
    if isinstance(host, str) and host.count(":") == 1 and not host.startswith("["):
        overrides["host"], overrides["port"] = host.split(":")  # --host 0.0.0.0:8080
    run_server(load_settings(overrides), announce=lambda service, settings: announce(service, settings, open_page))


# -- talking to a running server -------------------------------------------------------------------------
def base_url(settings: Settings) -> str:
    """Where the server of these settings answers (a wildcard bind is reached on loopback)."""
    return url_of(settings.host, settings.port)


def url_of(host: str, port: int) -> str:
    """`http://host:port` (IPv6 in brackets; a wildcard bind is reached on loopback)."""
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::", "*"):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def request(settings: Settings, method: str, path: str, body: Any = None, *, timeout: float = 30.0) -> Any:
    """Call the running server; HearthError with a readable sentence when it is not there or refuses."""
    url = base_url(settings) + path
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if settings.api_key:
        req.add_header("Authorization", f"Bearer {settings.api_key}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - our own server
            raw = resp.read()
    except urllib.error.HTTPError as err:
        detail = err.read().decode(errors="replace")
        try:
            message = json.loads(detail).get("error", detail)
        except (ValueError, AttributeError):
            message = detail
        cls = NotFoundError if err.code == 404 else HearthError
        raise cls(f"the server answered {err.code}: {message}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise HearthError(f"no Hearth server is running at {base_url(settings)} ({reason})",
                          hint="start one with `hearth serve`") from None
    return json.loads(raw) if raw else None


def until(expires_at: str, keep_alive: float | None, in_flight: int) -> str:
    """Ollama's UNTIL column: 'Forever', '4 minutes from now', 'Stopping...'."""
    if keep_alive is not None and keep_alive < 0:
        return "Forever"
    try:
        when = datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
    except ValueError:
        return "unknown"
    seconds = (when - datetime.now(timezone.utc)).total_seconds()
    if in_flight:
        return f"busy, then {_span(seconds)}"
    if seconds <= 0:
        return "Stopping..."
    return f"{_span(seconds)} from now"


def _span(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} second{'s' * (seconds != 1)}"
    if seconds < 3600:
        minutes = seconds // 60
        return f"{minutes} minute{'s' * (minutes != 1)}"
    hours = seconds // 3600
    return f"{hours} hour{'s' * (hours != 1)}"


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the server's JSON.")
def ps(as_json: bool) -> None:
    """Show the models the running server has loaded, their memory and when they unload."""
    from hearth.service import EngineSettings

    models = request(load_settings(), "GET", "/api/ps")["models"]
    if as_json:
        click.echo(json.dumps(models, indent=2))
        return
    click.echo(f"{'NAME':<28} {'ID':<14} {'SIZE':>8}  {'PROCESSOR':<10} {'SLOTS':<6} {'CACHED':>8}  UNTIL")
    for m in models:
        if m.get("remote_host"):  # a remote model: nothing loaded here, its prompts go to that server
            state = "answering now" if m.get("in_flight") else f"used {_span(m.get('idle_seconds') or 0)} ago"
            click.echo(f"{m['name']:<28} {'-':<14} {'-':>8}  {'remote':<10} {m.get('in_flight', 0):<6} {'-':>8}  "
                       f"{state} ({m['remote_model']} at {m['remote_host']})")
            continue
        slots = f"{m.get('slots_busy') or 0}/{m.get('slots') or 1}"
        click.echo(f"{m['name']:<28} {m['digest'][:12]:<14} {size_text(m.get('memory_rss') or m['size']):>8}  "
                   f"{'100% CPU':<10} {slots:<6} {m.get('cached_tokens') or 0:>8}  "
                   f"{until(m['expires_at'], m.get('keep_alive'), m.get('in_flight', 0))}")
        if isinstance(m.get("engine"), dict):
            click.echo(f"  {EngineSettings.from_dict(m['engine']).describe()}{speculation_line(m)}")


def speculation_line(model: dict[str, Any]) -> str:
    """"; speculative ngram (N of M drafted tokens accepted)", or nothing when it does not draft."""
    mode = model.get("speculative") or "off"
    if mode == "off":
        return ""
    drafted, accepted = model.get("draft_tokens") or 0, model.get("accepted_tokens") or 0
    return f"; speculative {mode} ({accepted} of {drafted} drafted tokens accepted)"


@click.command()
@click.argument("model")
def stop(model: str) -> None:
    """Unload MODEL from the running server now (its running answers end with an error)."""
    settings = load_settings()
    loaded = request(settings, "GET", "/api/ps")["models"]
    names = {m["name"] for m in loaded} | {m["name"].removesuffix(":latest") for m in loaded}
    if model not in names:
        raise NotFoundError(f"model {model!r} is not loaded", hint="`hearth ps` shows the loaded models")
    request(settings, "POST", "/api/generate", {"model": model, "keep_alive": 0})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # unloading is immediate, but say so only once it is true
        if not any(m["name"] in (model, f"{model}:latest") for m in request(settings, "GET", "/api/ps")["models"]):
            break
        time.sleep(0.1)
    click.echo(f"stopped '{model}'")
