"""`hearth fit MODEL`: will it fit, with how much context, in which quantization, how fast — before downloading."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from hearth.cli.common import service

if TYPE_CHECKING:
    from hearth.service import FitReport

COLOURS = {"fits": "green", "tight": "yellow", "too large": "red"}


@click.command()
@click.argument("model")
@click.option("--ctx", "num_ctx", type=int, help="Context tokens per sequence to size for (default: as loading would).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def fit(model: str, num_ctx: int | None, as_json: bool) -> None:
    """Memory MODEL needs here (weights + context cache + compute) and whether it fits.

    MODEL is a model you have, a catalog name or hf.co/OWNER/REPO[:QUANT]; for a remote one only the
    file's header is read (a few MB), never the weights.
    """
    from hearth.units import size_text as sz

    report = service().fit(model, num_ctx=num_ctx)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    shape, est, machine = report.shape, report.estimate, report.machine
    params = f"{shape.parameters / 1e9:.1f}B" if shape.parameters >= 1e9 else f"{shape.parameters / 1e6:.0f}M"
    source = "from its header" if shape.exact else "estimated: no header read"
    click.echo(f"{report.model}  ({shape.architecture}, {shape.quantization}, {params} parameters, {source})")
    ctx = f"{est.n_ctx} tokens" if est.n_seq == 1 else f"{est.n_seq} parallel × {est.n_ctx} tokens"
    rows = [
        ("memory needed", f"{sz(est.total):>8}   for {ctx} of context"),
        ("  weights", f"{sz(est.weights):>8}"),
        ("  context cache", f"{sz(est.kv_cache):>8}   (f16, {shape.kv_bytes_per_token // 1024} KB per token)"),
        ("  compute", f"{sz(est.compute):>8}"),
        ("  runtime", f"{sz(est.runtime):>8}   (llama.cpp, Python and the vocabulary)"),
        ("this machine", f"{sz(machine.available)} free of {sz(machine.total)}; "
                         f"budget for a model {sz(report.budget)} (memory_budget less the prompt cache)"),
    ]
    for label, value in rows:
        click.echo(f"  {label:<18} {value}")
    click.echo(f"  {'verdict':<18} " + click.style(report.verdict, fg=COLOURS[report.verdict], bold=True))
    click.echo(f"  {'largest context':<18} {_largest(report)}")
    best = report.best
    best_text = "none fits" if best is None else (
        f"{best.quant} ({sz(best.size)}{'' if best.size_known else ', estimated'})")
    click.echo(f"  {'best quantization':<18} {best_text}")
    measured = "measured" if machine.bandwidth_measured else "assumed"
    speed = report.tokens_per_second
    how = report.speed_source if report.speed_source.startswith("measured") else (
        f"{report.speed_source}: {machine.bandwidth / 1e9:.1f} GB/s, {measured}")
    click.echo(f"  {'speed':<18} ≈ {speed:.{0 if speed >= 10 else 1}f} tokens/s ({how})")
    if len(report.options) > 1:
        click.echo("  quantizations:")
        for option in report.options:
            mark = "" if option.size_known else " ≈"
            click.echo(f"    {click.style(f'{option.verdict:<9}', fg=COLOURS[option.verdict])} "
                       f"{option.quant:<8} file {sz(option.size):>8}{mark:<2}  needs {sz(option.total):>8}")
    for note in report.notes:
        click.echo(f"  note: {note}")


def _largest(report: FitReport) -> str:
    if report.largest_context is None:
        return "none: even 256 tokens would not fit comfortably"
    text = f"{report.largest_context} tokens"
    if report.largest_context >= report.shape.context_length:
        text += " (the model's maximum)"
    if report.estimate.n_seq > 1:
        text += f" per sequence, with {report.estimate.n_seq} in parallel (num_parallel)"
    return text
