"""`hearth pull NAME`: download a catalog model or any GGUF on Hugging Face, with a progress bar.

`import_folder` is the other way of getting models: linking those Ollama, LM Studio or the Hugging Face
cache already keep (`hearth import --from ollama`).

`ensure_local` is the same pull for `hearth run` / `hearth chat` when the model is not here yet: it asks
first on a terminal, or pulls at once with `--pull`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hearth.cli.common import service
from hearth.errors import InvalidRequestError, NotFoundError
from hearth.units import size_text as _size

if TYPE_CHECKING:
    from hearth.service import Manifest


@click.command()
@click.argument("name", required=False)
@click.option("--force", is_flag=True, help="Download even if the model is too large for this machine's memory.")
@click.option("--clean", is_flag=True, help="Delete abandoned partial downloads (`hearth list --all` shows them) "
                                             "first; with no NAME, only that.")
def pull(name: str | None, force: bool, clean: bool) -> None:
    """Download a model: a catalog name (`hearth catalog`) or hf.co/OWNER/REPO[:QUANT]."""
    if clean:
        removed = service().clean_downloads()
        for leftover in removed:
            click.echo(f"deleted the partial download of {leftover.source or leftover.path.name} "
                       f"({_size(leftover.size)})")
        if not removed:
            click.echo("no partial downloads to delete")
    if name is None:
        if not clean:
            raise InvalidRequestError("say which model to pull", hint="e.g. `hearth pull qwen2.5:0.5b`; "
                                      "`hearth pull --clean` deletes abandoned partial downloads")
        return
    manifest = pull_with_progress(name, force=force)
    parts = f", {len(manifest.parts)} parts" if manifest.parts else ""
    click.echo(f"pulled '{manifest.name}' ({manifest.info.quantization}, {_size(manifest.size)}{parts})")


def pull_with_progress(name: str, *, force: bool = False) -> Manifest:
    """Pull `name` through the service, drawing its progress on stderr; return the manifest."""
    display = _Display()
    try:
        return service().pull(name, display, force=force)
    except KeyboardInterrupt:
        display.close()
        click.echo(f"\nDownload paused. Run `hearth pull {name}` again to continue where it stopped.", err=True)
        raise
    finally:
        display.close()


def ensure_local(name: str, *, pull: bool = False) -> str:
    """The local name of `name`, pulling it first if it is a catalog or hf.co name that is not here yet.

    Without `pull`, a terminal user is asked; a script gets NotFoundError with the command to run.
    """
    local = service().local_name(name)
    if local is not None:
        return local
    where = service().pull_source(name)
    if where is None:
        service().show(name)  # NotFoundError, with its hint
    if not pull:
        if not (sys.stdin.isatty() and sys.stderr.isatty()):
            raise NotFoundError(f"model {name!r} is not downloaded yet",
                                hint=f"`hearth pull {name}` downloads it (from {where}), or add --pull")
        if not click.confirm(f"{name} is not downloaded yet. Download it from {where}?", default=True, err=True):
            raise NotFoundError(f"model {name!r} is not downloaded", hint=f"`hearth pull {name}` downloads it")
    return str(pull_with_progress(name).name)


def import_folder(path: Path | None, tool: str | None, name: str | None) -> None:
    """`hearth import FOLDER` / `--from TOOL`: link the models another tool keeps into Hearth's store."""
    report = service().import_from(tool, path, only=name)
    for manifest, shared in report.imported:
        how = "linked, no copy" if shared else "copied: another disk, or linking not allowed"
        click.echo(f"imported '{manifest.name}' ({_size(manifest.size)}, {manifest.info.quantization}; {how})")
    for label, reason in report.skipped:
        click.echo(f"skipped {label}: {reason}", err=True)
    if not report.imported and not report.skipped:
        click.echo(f"no GGUF models found in {report.folder}", err=True)


class _Display:
    """Renders pull progress objects: status lines, and one progress bar (size, speed, ETA) per file."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.tty = sys.stderr.isatty()
        self.last: str | None = None

    def __call__(self, event: dict[str, Any]) -> None:
        status = str(event.get("status", ""))
        if "total" in event:
            self._progress(status, int(event["total"]), int(event.get("completed", 0)))
            return
        self.close()
        if status != self.last:
            click.echo(status, err=True)
            self.last = status

    def _progress(self, status: str, total: int, completed: int) -> None:
        if not self.tty:  # logs and pipes: one line at the start, one at the end
            if status != self.last:
                click.echo(f"{status}: {_size(total)}" + (f" (resuming at {_size(completed)})" if completed else ""),
                           err=True)
                self.last = status
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=completed, unit="B", unit_scale=True, unit_divisor=1000,
                            desc=status, file=sys.stderr, dynamic_ncols=True, mininterval=0.3, leave=True)
            self.last = status
        self.bar.update(completed - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

