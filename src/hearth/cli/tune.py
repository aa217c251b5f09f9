"""`hearth tune`: measure the fastest engine settings for a model on this machine, and show the trials."""

from __future__ import annotations

import json

import click

from hearth.cli.common import service
from hearth.cli.pull import ensure_local
from hearth.service import BUNDLED_NAME


@click.command()
@click.argument("model", default=BUNDLED_NAME)
@click.option("--json", "as_json", is_flag=True, help="Print the measurement as JSON.")
def tune(model: str, as_json: bool) -> None:
    """Measure MODEL's fastest engine settings here (flash attention, threads, prompt batch) and keep them.

    Hearth does this by itself the first time a model of a new shape loads; run it again after changing
    the machine's load or power settings. Settings you give yourself still win over what is measured.
    """
    model = ensure_local(model)
    hearth = service()
    hearth.set_notice(lambda line: click.echo(line, err=True))
    calibration = hearth.tune(model)
    engine, _ = hearth.engine_settings(model)
    if as_json:
        click.echo(json.dumps({"model": model, **calibration.to_dict(), "in_force": engine.to_dict()}, indent=2))
        return
    click.echo(f"{'FLASH ATTN':<11}{'THREADS':>8}{'BATCH':>7}  {'DECODE (EMPTY)':>15}{'PROMPT':>10}"
               f"{'DECODE @ DEPTH':>16}")
    for trial, timing in calibration.trials:
        deep = f"{timing.decode_deep:.1f} @ {trial.depth}" if timing.decode_deep else "-"
        click.echo(f"{'on' if trial.flash_attn else 'off':<11}{trial.threads:>8}{trial.batch:>7}  "
                   f"{_rate(timing.decode_empty):>15}{_rate(timing.prompt):>10}{deep:>16}")
    tuned = calibration.tuned
    click.echo(f"\nfastest here: flash attention {tuned.flash_attention}, {tuned.threads} decode threads, "
               f"batch {tuned.batch} (tokens/s; measured in {calibration.seconds:.1f} s, kept for next time)")
    click.echo(f"in force: {engine.describe()}")


def _rate(value: float) -> str:
    return f"{value:.1f}" if value else "-"
