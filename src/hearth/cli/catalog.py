"""`hearth catalog`: the short names Hearth can pull, with size, licence and a fit label for this machine."""

from __future__ import annotations

import json

import click

from hearth.cli.common import service
from hearth.cli.fit import COLOURS
from hearth.units import size_text


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def catalog(as_json: bool) -> None:
    """List the models `hearth pull NAME` knows by a short name (no network needed)."""
    rows = service().catalog()
    if as_json:
        click.echo(json.dumps([{**r.entry.as_dict(), "estimated_size": r.shape.weights_bytes, "fit": r.fit,
                                "memory_at_4k_context": r.memory_at_4k} for r in rows], indent=2))
        return
    click.echo(f"{'NAME':<20} {'PARAMS':>7} {'QUANT':<7} {'SIZE':>8} {'FIT':<9} {'LICENSE':<13} DESCRIPTION")
    for row in rows:
        entry, shape, verdict = row.entry, row.shape, row.fit
        params = f"{entry.parameters / 1e9:.1f}B"
        click.echo(f"{entry.name:<20} {params:>7} {entry.quant:<7} {'≈' + size_text(shape.weights_bytes):>8} "
                   + click.style(f"{verdict:<9}", fg=COLOURS[verdict])
                   + f" {entry.license:<13} {entry.description}")
    click.echo("\nSizes are estimates; `hearth fit NAME` reads the real file's header, `hearth pull NAME` downloads.")
