"""`hearth search QUERY`: GGUF repositories on Hugging Face, with sizes per quantization and a fit label each."""

from __future__ import annotations

import json

import click

from hearth.cli.common import service
from hearth.cli.fit import COLOURS
from hearth.units import size_text


@click.command()
@click.argument("query", nargs=-1, required=True)
@click.option("--limit", "-n", default=10, show_default=True, help="How many repositories to show (at most 50).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def search(query: tuple[str, ...], limit: int, as_json: bool) -> None:
    """Find GGUF models on Hugging Face (most downloaded first) and see which fit this machine."""
    results = service().search(" ".join(query), limit=limit)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], indent=2))
        return
    if not results:
        click.echo("no GGUF repositories found; try fewer or other words")
        return
    for result in results:
        downloads = "" if result.downloads is None else f"  {_count(result.downloads)} downloads"
        click.echo(click.style(f"hf.co/{result.repo_id}", bold=True) + downloads)
        if result.problem:
            click.echo(f"    ({result.problem})")
            continue
        cells = []
        for quant, size in result.sizes.items():
            verdict = result.labels.get(quant, "fits")
            marker = "*" if quant == result.default else ""
            cells.append(f"{quant}{marker} {size_text(size)} " + click.style(verdict, fg=COLOURS[verdict]))
        for start in range(0, len(cells), 4):
            click.echo("    " + " · ".join(cells[start:start + 4]))
        if result.best:
            click.echo(f"    best fit: hearth pull hf.co/{result.repo_id}:{result.best}")
    click.echo("\n* pulled when no quantization is named. Fit labels are estimated from file sizes; "
               "`hearth fit hf.co/OWNER/REPO:QUANT` reads the real header.")


def _count(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1e6:.1f}M"
    return f"{n / 1e3:.1f}k" if n >= 1000 else str(n)
