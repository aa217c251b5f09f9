"""Model management commands: list, show, rm, cp, import."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from hearth.cli.common import service
from hearth.errors import InvalidRequestError
from hearth.service import Remote
from hearth.units import size_text as _size


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--all", "show_all", is_flag=True, help="Also list partial downloads (resumable, or abandoned), "
                                                      "with their size.")
def list_(as_json: bool, show_all: bool) -> None:
    """List the models you have."""
    models = service().list_models()
    remotes = service().remote_list()
    partials = service().downloads() if show_all else []
    if as_json:
        rows: list[dict[str, object]] = [
            {"name": m.name, "digest": m.digest, "size": m.size, "quantization": m.info.quantization,
             "source": m.provenance.source, **({"parts": len(m.parts)} if m.parts else {})} for m in models]
        rows += [{"name": r.name, "remote": True, "url": r.url, "api": r.api, "remote_model": r.model}
                 for r in remotes]
        click.echo(json.dumps({"models": rows, "partial_downloads": [p.to_dict() for p in partials]}
                              if show_all else rows, indent=2))
        return
    click.echo(f"{'NAME':<32} {'ID':<14} {'SIZE':>9}  {'QUANT':<8} SOURCE")
    for m in models:
        short = m.digest.split(":")[-1][:12]
        parts = f" ({len(m.parts)} parts)" if m.parts else ""
        click.echo(f"{m.name:<32} {short:<14} {_size(m.size):>9}  {m.info.quantization:<8} {m.provenance.source}"
                   f"{parts}")
    for r in remotes:  # prompts to these leave this computer: say so on every line
        click.echo(f"{r.name:<32} {'remote':<14} {'-':>9}  {'-':<8} {r.model} at {r.url} (prompts go there)")
    if show_all:
        _list_partials(partials)


def _list_partials(partials: list[Any]) -> None:
    if not partials:
        click.echo("\nno partial downloads")
        return
    click.echo("\npartial downloads (`hearth pull NAME` continues one, `hearth pull --clean` deletes them):")
    now = time.time()
    for p in partials:
        of = f" of {_size(p.total)}" if p.total else ""
        when = "downloading now" if p.busy else f"last written {_ago(now - p.modified)}"
        click.echo(f"  {p.source or p.path.name}  {_size(p.size)}{of}  ({when})")


def _show_remote(remote: Remote, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"name": remote.name, "remote": True, "url": remote.url, "api": remote.api,
                               "remote_model": remote.model, "server": remote.server, "key_env": remote.key_env,
                               "added": remote.added, "base": remote.base, "system": remote.system,
                               "parameters": remote.parameters, "messages": remote.messages}, indent=2))
        return
    click.echo(f"{remote.name} (remote: prompts sent to it leave this computer)")
    rows = [("url", remote.url), ("api", remote.api), ("model there", remote.model), ("server", remote.server),
            ("key", f"from ${remote.key_env}" if remote.key_env else "none"), ("registered", remote.added)]
    if remote.base:  # a persona (`hearth create NAME` FROM a remote model)
        rows.append(("persona of", remote.base))
    rows += _persona_rows(remote.system, remote.parameters, remote.messages)
    for label, value in rows:
        click.echo(f"  {label:<22}{value}")


def _persona_rows(system: str | None, parameters: dict[str, Any], messages: list[Any]) -> list[tuple[str, str]]:
    """What a persona adds to its base, local or remote: system prompt, defaults, seed turns."""
    rows = [("system", system)] if system else []
    if parameters:
        rows.append(("parameters (defaults)", json.dumps(parameters)))
    if messages:
        rows.append(("seed messages", str(len(messages))))
    return rows


def _ago(seconds: float) -> str:
    for unit, length in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= length:
            count = int(seconds // length)
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"


@click.command()
@click.argument("model")
@click.option("--template", is_flag=True, help="Print only the chat template.")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
@click.option("--modelfile", is_flag=True, help="Print a Modelfile that recreates the model (`hearth create`).")
def show(model: str, template: bool, as_json: bool, modelfile: bool) -> None:
    """Show a model's architecture, size, quantization, context, template and license."""
    remote = service().remote(model)
    if remote is not None:
        _show_remote(remote, as_json)
        return
    m = service().show(model)
    if as_json:
        click.echo(m.to_json())
        return
    if modelfile:
        click.echo(service().modelfile(model), nl=False)
        return
    info = m.info
    if template:
        click.echo(m.template_source or m.template or info.chat_template or "(no chat template: ChatML is used)")
        return
    count = info.parameter_count
    params = f"{count / 1e9:.2f}B" if count >= 1e9 else f"{count / 1e6:.0f}M"
    rows = [
        ("name", m.name), ("architecture", info.architecture), ("parameters", params),
        ("quantization", info.quantization), ("file size", _size(m.size)),
        ("context length", str(info.context_length or "unknown")),
        ("embedding length", str(info.embedding_length or "unknown")),
        ("license", m.provenance.license or info.license or "unknown"),
        ("source", m.provenance.source), ("digest", m.digest),
    ]
    rows += _persona_rows(m.system, m.parameters, m.messages)
    if m.adapters:
        rows.append(("LoRA adapters", ", ".join(d[7:19] for d in m.adapters)))
    engine, calibration = service().engine_settings(model)
    rows.append(("engine settings", engine.describe()))
    if calibration is not None:
        rows.append(("measured", f"{calibration.measured_at[:16].replace('T', ' ')} in {calibration.seconds:.1f} s "
                                 "(`hearth tune` measures again)"))
    for label, value in rows:
        click.echo(f"  {label:<22}{value}")
    click.echo("  chat template:")
    shown = m.template_source or m.template or info.chat_template or "(none: ChatML is used)"
    for line in shown.splitlines()[:40]:
        click.echo(f"    {line}")


@click.command("rm")
@click.argument("models", nargs=-1, required=True)
def remove(models: tuple[str, ...]) -> None:
    """Remove models (weights are deleted when no other name uses them)."""
    for name in models:
        removed = service().remove(name)
        click.echo(f"deleted '{removed.name}'")


@click.command("cp")
@click.argument("source")
@click.argument("destination")
def copy(source: str, destination: str) -> None:
    """Copy a model under a new name (the weights are shared, not duplicated)."""
    m = service().copy(source, destination)
    click.echo(f"copied '{source}' to '{m.name}'")


@click.command("import")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.option("--name", "-n", help="Name for the model, e.g. mymodel:q4 (with a folder: the one model to take).")
@click.option("--link", is_flag=True, help="Hard-link the file instead of copying it (same disk only).")
@click.option("--from", "tool", type=click.Choice(["ollama", "hf", "lmstudio"]),
              help="Use the models of Ollama, the Hugging Face cache or LM Studio (their usual folder unless PATH "
                   "is given), linked rather than copied.")
def import_(path: Path | None, name: str | None, link: bool, tool: str | None) -> None:
    """Add a GGUF file (a USB stick, a download), or the models in another tool's folder, after checking them."""
    if tool is not None or path is None or path.is_dir():
        from hearth.cli.pull import import_folder

        import_folder(path, tool, name)
        return
    if not name:
        raise InvalidRequestError("importing a file needs --name", hint=f"e.g. hearth import {path} --name mymodel")
    m = service().import_file(path, name, link=link)
    click.echo(f"imported '{m.name}' ({_size(m.size)}, {m.info.architecture}, {m.info.quantization})")
