"""`hearth create NAME -f Modelfile`: a persona or derived model from Ollama's Modelfile format."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from hearth.cli.common import service
from hearth.errors import InvalidRequestError


@click.command()
@click.argument("name")
@click.option("--file", "-f", "path", type=click.Path(dir_okay=False, path_type=Path), default=Path("Modelfile"),
              show_default=True, help="The Modelfile to read; paths in it are relative to its folder.")
def create(name: str, path: Path) -> None:
    """Create model NAME from a Modelfile: a system prompt, defaults, template, seed messages or a LoRA.

    FROM names a model (or a GGUF file); the new model shares its weights. An existing NAME is replaced,
    as in Ollama. `hearth show NAME --modelfile` prints a model's Modelfile.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidRequestError(f"there is no Modelfile at {path}",
                                  hint="write one (see docs/history.md) or name it with -f FILE") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InvalidRequestError(f"cannot read {path}: {err}") from None
    created = service().create(name, text, base_dir=path.resolve().parent, pull_missing=_puller())
    for warning in created.warnings:
        click.secho(f"Note: {warning}", fg="yellow", err=True)
    click.echo(f"{'replaced' if created.replaced else 'created'} '{created.name}' from {created.origin}")


def _puller() -> Callable[[str], str] | None:
    """How a FROM that names a catalog model not downloaded yet gets fetched (asking first on a terminal)."""
    try:
        from hearth.cli.pull import ensure_local
    except ImportError:  # pragma: no cover - a build without the catalog
        return None
    return ensure_local
