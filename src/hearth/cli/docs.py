"""`hearth docs ...`: document collections to chat with (`hearth chat --docs NAME`, `hearth run --docs NAME`).

Indexing, retrieval and citations live in `hearth.service.documents`; this module turns them into commands,
a progress bar and terminal output.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from hearth.cli.common import service
from hearth.options import Options
from hearth.service import CitedAnswer, Generation
from hearth.types import Answer, Event, Message, Notice, TextChunk


@click.group()
def docs() -> None:
    """Collections of your documents (text, Markdown, HTML, PDF, DOCX) to search and chat with.

    Everything stays on this computer: the index is a SQLite file under HEARTH_HOME.
    """


class _Bar:
    """A tqdm progress bar over files on a terminal; nothing otherwise."""

    def __init__(self) -> None:
        self.bar: Any = None

    def __call__(self, event: str, path: str, done: int, total: int) -> None:
        if event == "start" and total > 1 and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="file", file=sys.stderr, leave=False)
        elif event == "file" and self.bar is not None:
            self.bar.set_postfix_str(Path(path).name[-30:], refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@docs.command("add")
@click.argument("collection")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def add(collection: str, paths: tuple[Path, ...]) -> None:
    """Index files and folders into COLLECTION (created if new).

    Run it again to bring the collection up to date: only changed files are read again, and files that are
    gone are dropped. Unreadable files (encrypted, damaged, too large) are skipped with the reason.
    """
    bar = _Bar()
    try:
        report = service().documents.add(collection, list(paths), progress=bar)
    finally:
        bar.close()
    for path, reason in report.skipped:
        click.secho(f"skipped {path}: {reason}", fg="yellow", err=True)
    click.echo(f"{collection}: {len(report.indexed)} file(s) indexed ({report.chunks} passages), "
               f"{len(report.unchanged)} unchanged, {len(report.removed)} removed, {len(report.skipped)} skipped.")
    if report.note:
        click.secho(f"Note: {report.note}.", fg="yellow", err=True)


@docs.command("list")
def list_() -> None:
    """The collections, with their files and passages."""
    rows = service().documents.list()
    if not rows:
        click.echo("No collections yet: make one with `hearth docs add NAME FOLDER`.")
        return
    click.echo(f"{'NAME':<24}{'FILES':>7}{'PASSAGES':>10}{'EMBEDDED':>10}  UPDATED")
    for row in rows:
        click.echo(f"{row.name:<24}{row.files:>7}{row.chunks:>10}{row.embedded:>10}  {row.updated_at}")


@docs.command("show")
@click.argument("collection")
def show(collection: str) -> None:
    """The files of COLLECTION: pages, passages and when each was indexed."""
    found = service().documents.show(collection)
    info = found.info
    click.echo(f"{info.name}: {info.files} file(s), {info.chunks} passages ({info.embedded} with vectors)")
    for record in found.files:
        pages = f"{record.pages} pages" if record.pages else record.kind
        click.echo(f"  {record.path}  ({pages}, {record.chunks} passages, {record.indexed_at})")


@docs.command("rm")
@click.argument("collection")
@click.argument("path", required=False, type=click.Path(path_type=Path))
def rm(collection: str, path: Path | None) -> None:
    """Delete COLLECTION, or only the file or folder PATH from it, for good (erased from the index files)."""
    removed = service().documents.remove(collection, path)
    what = f"collection {collection}" if removed.whole else f"{len(removed.files)} file(s) from {collection}"
    click.echo(f"Deleted {what}.")
    if not removed.complete:
        click.secho("Note: another process is reading the index; the deleted text leaves its journal file when "
                    "it stops.", fg="yellow", err=True)


@docs.command("search")
@click.argument("collection")
@click.argument("query")
@click.option("--limit", "-n", default=5, show_default=True, help="How many passages to show.")
@click.option("--mode", type=click.Choice(["hybrid", "bm25", "dense"]), default="hybrid", show_default=True,
              help="Keywords and vectors fused (hybrid), or one of them alone.")
@click.option("--json", "as_json", is_flag=True, help="Print the passages as JSON.")
def search(collection: str, query: str, limit: int, mode: str, as_json: bool) -> None:
    """The passages of COLLECTION that best match QUERY, ranked, with file, page and score."""
    found = service().documents.search(collection, query, limit=limit, mode=mode)
    if as_json:
        click.echo(json.dumps({"mode": found.mode, "passages": [
            {"path": p.path, "page": p.page, "score": round(p.score, 6), "text": p.text} for p in found.passages]},
            ensure_ascii=False))
        return
    if found.note:
        click.secho(f"Note: {found.note}.", fg="yellow", err=True)
    if not found.passages:
        click.echo("No passage matches.")
    for rank, passage in enumerate(found.passages, 1):
        click.secho(f"{rank}. {passage.where}  (score {passage.score:.4f})", bold=True)
        click.echo(textwrap.indent(textwrap.shorten(passage.text, 400, placeholder=" …"), "   "))


def print_sources(cited: CitedAnswer) -> None:
    """The sources under an answer: those it cites, or (citing none) those it was given."""
    sources = cited.cited_sources
    if sources:
        click.secho("Sources:", bold=True)
    elif cited.sources:
        click.secho("Sources given (the answer cites none):", dim=True)
        sources = cited.sources
    for source in sources:
        click.echo(f"  [{source.number}] {source.where}")


def answer_from_docs(model: str, messages: list[Message], collection: str, options: Options,
                     show: Callable[[str], None]) -> tuple[Answer, Generation, CitedAnswer]:
    """Answer the last message from COLLECTION's passages, streaming the text through `show` with invented
    citations dropped; the answer (its text so cleaned), the generation, and the sources."""
    grounded = service().ground(model, messages, collection)
    if grounded.note:
        click.secho(f"Note: {grounded.note}.", fg="yellow", err=True)
    citations = grounded.citations()
    shown: list[str] = []

    def on_event(event: Event) -> None:
        if isinstance(event, TextChunk):
            text = citations.feed(event.text)
        elif isinstance(event, Notice):
            click.secho(f"Note: {event.message}", fg="yellow", err=True)
            return
        else:
            return
        shown.append(text)
        show(text)

    generation = service().chat(model, grounded.messages, options)
    answer = generation.consume(on_event)
    tail = citations.flush()
    shown.append(tail)
    show(tail)
    cited = grounded.finished(citations, "".join(shown))
    return replace(answer, text=cited.text), generation, cited
