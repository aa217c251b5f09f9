"""Model management commands: list, show, rm, cp, import."""

from __future__ import annotations

import json
from pathlib import Path

import click

from hearth.cli.common import service
from hearth.errors import InvalidRequestError
from hearth.units import size_text as _size


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(as_json: bool) -> None:
    """List the models you have."""
    models = service().list_models()
    if as_json:
        click.echo(json.dumps([{"name": m.name, "digest": m.digest, "size": m.size,
                                "quantization": m.info.quantization, "source": m.provenance.source}
                               for m in models], indent=2))
        return
    click.echo(f"{'NAME':<32} {'ID':<14} {'SIZE':>9}  {'QUANT':<8} SOURCE")
    for m in models:
        short = m.digest.split(":")[-1][:12]
        click.echo(f"{m.name:<32} {short:<14} {_size(m.size):>9}  {m.info.quantization:<8} {m.provenance.source}")


@click.command()
@click.argument("model")
@click.option("--template", is_flag=True, help="Print only the chat template.")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
@click.option("--modelfile", is_flag=True, help="Print a Modelfile that recreates the model (`hearth create`).")
def show(model: str, template: bool, as_json: bool, modelfile: bool) -> None:
    """Show a model's architecture, size, quantization, context, template and license."""
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
    if m.system:
        rows.append(("system", m.system))
    if m.parameters:
        rows.append(("parameters (defaults)", json.dumps(m.parameters)))
    if m.messages:
        rows.append(("seed messages", str(len(m.messages))))
    if m.adapters:
        rows.append(("LoRA adapters", ", ".join(d[7:19] for d in m.adapters)))
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
