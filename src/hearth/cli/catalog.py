"""`hearth catalog`: the short names Hearth can pull, with size, licence and a fit label for this machine."""

from __future__ import annotations

import json

import click

from hearth.cli.common import service
from hearth.cli.fit import COLOURS


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def catalog(as_json: bool) -> None:
    """List the models `hearth pull NAME` knows by a short name (no network needed)."""
    from hearth.fit import ModelShape, estimate, label, size_text, this_machine
    from hearth.hub import entries

    svc = service()
    machine = this_machine(measure=False)
    n_seq = max(1, svc.settings.num_parallel)
    rows = []
    for entry in entries():
        shape = ModelShape.from_catalog(entry.as_dict(), entry.quant)
        verdict = label(shape, machine, svc.model_budget, n_seq)
        rows.append((entry, shape, verdict, estimate(shape, 4096, 1).total))
    if as_json:
        click.echo(json.dumps([{**e.as_dict(), "estimated_size": s.weights_bytes, "fit": v,
                                "memory_at_4k_context": m} for e, s, v, m in rows], indent=2))
        return
    click.echo(f"{'NAME':<20} {'PARAMS':>7} {'QUANT':<7} {'SIZE':>8} {'FIT':<9} {'LICENSE':<13} DESCRIPTION")
    for entry, shape, verdict, _ in rows:
        params = f"{entry.parameters / 1e9:.1f}B"
        click.echo(f"{entry.name:<20} {params:>7} {entry.quant:<7} {'≈' + size_text(shape.weights_bytes):>8} "
                   + click.style(f"{verdict:<9}", fg=COLOURS[verdict])
                   + f" {entry.license:<13} {entry.description}")
    click.echo("\nSizes are estimates; `hearth fit NAME` reads the real file's header, `hearth pull NAME` downloads.")
