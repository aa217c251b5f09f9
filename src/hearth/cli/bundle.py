"""`hearth bundle export DIR --model NAME...` and `hearth bundle import DIR`: models (and Hearth) on a USB stick."""

from __future__ import annotations

import re
from pathlib import Path

import click

from hearth.cli.common import service
from hearth.cli.pull import _Display
from hearth.errors import InvalidOptionError
from hearth.units import size_text

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B?)\s*$", re.IGNORECASE)


@click.group()
def bundle() -> None:
    """Carry models, and Hearth itself, to a computer with no network (a folder on a USB stick)."""


@bundle.command("export")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--model", "-m", "models", multiple=True, required=True, metavar="NAME",
              help="A model to put in the bundle (repeat for more).")
@click.option("--no-wheels", is_flag=True, help="Only the models, for a computer that already has Hearth.")
@click.option("--wheels", "wheel_dirs", multiple=True, type=click.Path(file_okay=False, exists=True, path_type=Path),
              metavar="DIR", help="A folder of wheels to take packages from first (repeatable).")
@click.option("--part-size", default=None, metavar="SIZE",
              help="Split weights files larger than this, e.g. 2G or 500M (default: 4 GiB - 1 B, FAT32's limit).")
def export(folder: Path, models: tuple[str, ...], no_wheels: bool, wheel_dirs: tuple[Path, ...],
           part_size: str | None) -> None:
    """Write models, Hearth and every package it needs, an install script and checksums into FOLDER."""
    display = _Display()
    try:
        report = service().export_bundle(folder, list(models), wheels=not no_wheels, wheel_dirs=wheel_dirs,
                                         part_size=_bytes(part_size) if part_size else None, progress=display)
    finally:
        display.close()
    for manifest in report.models:
        parts = f", {len(manifest.parts)} parts" if manifest.parts else ""
        click.echo(f"  {manifest.name:<32} {size_text(manifest.size):>9}{parts}")
    if report.wheels:
        origins: dict[str, int] = {}
        for wheel in report.wheels:
            kind = "found as wheel files" if wheel.origin.startswith("local wheel") else wheel.origin
            origins[kind] = origins.get(kind, 0) + 1
        click.echo(f"  {len(report.wheels)} wheels: " + ", ".join(f"{n} {k}" for k, n in origins.items()))
    for skipped in report.skipped:
        click.echo(f"  left out: {skipped}")
    click.echo(f"wrote {report.files} files ({size_text(report.size)}) to {report.folder} in {report.seconds:.1f} s")
    if report.wheels:
        click.echo(f"on the other computer: sh {report.folder / 'install'}")
    else:
        click.echo(f"on the other computer: hearth bundle import {report.folder}")


@bundle.command("import")
@click.argument("folder", type=click.Path(file_okay=False, exists=True, path_type=Path))
def import_(folder: Path) -> None:
    """Add the models of the bundle in FOLDER, after checking every file of theirs against BUNDLE.json."""
    display = _Display()
    try:
        result = service().import_bundle(folder, progress=display)
    finally:
        display.close()
    for manifest in result.added:
        click.echo(f"imported '{manifest.name}' ({size_text(manifest.size)}, {manifest.info.quantization})")
    for name in result.present:
        click.echo(f"'{name}' is already here")
    for name, why in result.skipped:
        click.echo(f"skipped '{name}': {why}", err=True)
    if not result.added:
        click.echo(f"nothing to import: the models of {result.folder} are already here"
                   if not result.skipped else "nothing was imported")


def _bytes(text: str) -> int:
    """`2G`, `500M`, `1.5GiB`, `1048576` → bytes (K, M, G and T are powers of 1024)."""
    match = _SIZE.match(text)
    if match is None:
        raise InvalidOptionError(f"--part-size expects a size like 2G or 500M, got {text!r}")
    number, unit = float(match.group(1)), match.group(2).upper()
    return int(number * 1024 ** "_KMGT".index(unit)) if unit else int(number)
