"""`hearth history ...`, and the chat options that resume and fork recorded conversations.

Recording, resuming, forking and replaying live in `hearth.service.conversations`; this module only turns
them into commands and terminal output. `--no-history` on `chat`, `run` and `history replay`, or the
setting `history = false`, records nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from dataclasses import asdict
from datetime import datetime
from itertools import zip_longest
from pathlib import Path
from typing import Any

import click

from hearth.cli.common import cli_options, service
from hearth.service import LATEST, ChatStart
from hearth.types import Event, Notice


def history_options(command: Any) -> Any:
    """The `--no-history`, `--continue [ID]`, `--fork ID` and `--at N` options of `hearth chat`."""
    for option in reversed([
        click.option("--no-history", is_flag=True, help="Do not record this conversation."),
        click.option("--continue", "resume", is_flag=False, flag_value=LATEST, default=None, metavar="[ID]",
                     help="Continue a recorded conversation (the latest when no ID is given)."),
        click.option("--fork", metavar="ID", help="Start a new conversation from a recorded one (see --at)."),
        click.option("--at", type=int, metavar="N", help="With --fork: keep messages 1..N (default: all)."),
    ]):
        command = option(command)
    return command


def begin_chat(model: str | None, system: str | None, *, no_history: bool = False, resume: str | None = None,
               fork: str | None = None, at: int | None = None) -> ChatStart:
    """How `hearth chat` starts: fresh, continuing a recorded conversation, or forking one."""
    if resume is not None and fork is not None:
        raise click.UsageError("use either --continue or --fork, not both")
    if at is not None and fork is None:
        raise click.UsageError("--at goes with --fork ID")
    start = service().conversations.begin(model, system, record=not no_history, resume=resume, fork=fork, at=at)
    if start.warning:
        click.secho(f"[{start.warning}]", fg="yellow", err=True)
    return start


def show_start(start: ChatStart) -> None:
    """Remind the user where a continued or forked conversation stands."""
    if start.note is None:
        return
    click.secho(start.note, dim=True, err=True)
    for message in start.messages[-2:]:
        text = message.content if len(message.content) <= 300 else message.content[:300] + "…"
        click.secho(f"{'>>> ' if message.role == 'user' else ''}{text}", dim=True, err=True)


def show_notice(event: Event) -> None:
    """Print a generation's notices (trimmed history, fallback template) as they pass."""
    if isinstance(event, Notice):
        click.secho(f"[{event.message}]", fg="yellow", err=True)


# -- hearth history ----------------------------------------------------------------------------------------------

@click.group("history")
def history() -> None:
    """Your recorded conversations: list, show, search, export, replay and delete them."""


@history.command("list")
@click.option("--limit", "-n", default=20, show_default=True, help="How many conversations to show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(limit: int, as_json: bool) -> None:
    """List conversations, most recent first."""
    rows = service().conversations.list(limit)
    if as_json:
        click.echo(json.dumps([asdict(r) for r in rows], indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo("No conversations recorded yet." + ("" if service().conversations.enabled else
                                                      " (Recording is off: the `history` setting is false.)"))
        return
    click.echo(f"{'ID':<14}{'UPDATED':<18}{'MODEL':<22}{'MSGS':>5}  FIRST MESSAGE")
    for r in rows:
        click.echo(f"{r.id:<14}{_local(r.updated_at):<18}{(r.model or '-')[:21]:<22}{r.message_count:>5}  {r.title}")


@history.command()
@click.argument("conversation")
@click.option("--json", "as_json", is_flag=True, help="Print everything recorded, as JSON.")
def show(conversation: str, as_json: bool) -> None:
    """Show a conversation (an id, or its first few characters), message by message."""
    if as_json:
        click.echo(service().conversations.export(conversation, "json"), nl=False)
        return
    found = service().conversations.get(conversation)
    s = found.summary
    click.secho(f"Conversation {s.id} · {s.source} · started {_local(s.created_at)}"
                + (f" · forked from {s.parent_id} at message {s.parent_at}" if s.parent_id else ""), dim=True)
    for m in found.messages:
        click.echo("")
        click.secho(f"[{m.position}] {m.role}" + (f" · {m.model}" if m.model else ""), bold=True)
        click.echo(m.content)


@history.command()
@click.argument("words", nargs=-1, required=True)
@click.option("--limit", "-n", default=20, show_default=True, help="How many messages to show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def search(words: tuple[str, ...], limit: int, as_json: bool) -> None:
    """Find messages containing all WORDS (full-text; "cats" also finds "cat"; end a word with * for prefixes)."""
    hits = service().conversations.search(" ".join(words), limit)
    if as_json:
        click.echo(json.dumps([{**asdict(h), "snippet": h.highlighted()} for h in hits], indent=2,
                              ensure_ascii=False))
        return
    if not hits:
        click.echo(f"No messages match {' '.join(words)!r}.")
        return
    for h in hits:
        tty = click.get_text_stream("stdout").isatty()
        snippet = (h.highlighted("\x1b[1m", "\x1b[0m") if tty else h.highlighted()).split()
        click.echo(f"{h.conversation_id}  [{h.position}] {h.role:<9} {_local(h.created_at)}  ", nl=False)
        click.echo(" ".join(snippet))


@history.command()
@click.argument("conversation")
@click.option("--format", "fmt", type=click.Choice(["md", "json"]), default="md", show_default=True,
              help="Markdown to read, JSON with everything recorded.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file (readable only by you) instead of printing.")
def export(conversation: str, fmt: str, output: Path | None) -> None:
    """Export a conversation as Markdown or JSON."""
    text = service().conversations.export(conversation, fmt)
    if output is None:
        click.echo(text, nl=False)
        return
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    click.echo(f"wrote {output}", err=True)


@history.command("rm")
@click.argument("conversations", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Delete every conversation.")
@click.option("--older-than", type=click.IntRange(min=1), metavar="DAYS",
              help="Delete conversations not updated for DAYS days.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before deleting everything.")
def remove(conversations: tuple[str, ...], everything: bool, older_than: int | None, yes: bool) -> None:
    """Delete conversations for good: their text is erased from the database file, not just hidden."""
    if sum([bool(conversations), everything, older_than is not None]) != 1:
        raise click.UsageError("give conversation ids, or --all, or --older-than DAYS")
    log = service().conversations
    if everything:
        if not yes:
            click.confirm(f"Delete all {log.count()} conversations? This cannot be undone.", abort=True)
        deleted = log.delete_all()  # the chat's line-editing history goes too
    elif older_than is not None:
        deleted = log.prune(older_than)
    else:
        deleted = log.delete(conversations)
    count = deleted.count
    click.echo(f"deleted {count} conversation{'' if count == 1 else 's'}")
    if not deleted.complete:
        click.secho("Note: another Hearth process has the history open; the deleted text leaves the database's "
                    "journal file when it closes.", fg="yellow", err=True)


@history.command()
def path() -> None:
    """Print where the history database is (a SQLite file: Datasette and sqlite3 can open it)."""
    click.echo(service().conversations.path)


@history.command()
@click.argument("conversation")
@click.option("--model", "-m", required=True, help="The model to answer the conversation's questions.")
@click.option("--option", "-o", "options", multiple=True, metavar="KEY=VALUE", help="Option for the new answers.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--no-history", is_flag=True, help="Do not record the replay as a new conversation.")
def replay(conversation: str, model: str, options: tuple[str, ...], as_json: bool, no_history: bool) -> None:
    """Ask MODEL a conversation's questions again and show its answers beside the recorded ones."""
    original, turns = service().replay(conversation, model, cli_options(options), record=not no_history,
                                       on_event=show_notice)
    if not as_json:
        click.secho(f"Replaying {sum(m.role == 'user' for m in original.messages)} question(s) of {original.id} "
                    f"with {model}.", dim=True, err=True)
    rows = []
    for turn in turns:
        if as_json:
            rows.append({"question": turn.question,
                         "recorded": {"model": turn.recorded_model, "answer": turn.recorded},
                         "replayed": {"model": turn.model, "answer": turn.answer.text,
                                      "done_reason": turn.answer.done.reason,
                                      "eval_count": turn.answer.done.stats.completion_tokens}})
        else:
            _side_by_side(turn.number, turn.question, (turn.recorded_model, turn.recorded),
                          (turn.model, turn.answer.text))
    if as_json:
        click.echo(json.dumps({"conversation": original.id, "model": model, "turns": rows}, indent=2,
                              ensure_ascii=False))


def _side_by_side(number: int, question: str, left: tuple[str, str], right: tuple[str, str]) -> None:
    width = max(40, shutil.get_terminal_size((100, 24)).columns)
    column = (width - 3) // 2
    click.echo("")
    click.secho(f"── {number}. {question}"[:width], bold=True)
    rows = zip_longest(_wrap(left[0], column) + _wrap(left[1], column),
                       _wrap(right[0], column) + _wrap(right[1], column), fillvalue="")
    for i, (a, b) in enumerate(rows):
        line = f"{a:<{column}} │ {b}"
        click.secho(line.rstrip(), dim=i == 0)


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    for paragraph in (text.strip() or "(no answer)").splitlines():
        lines += textwrap.wrap(paragraph, width) or [""]
    return lines


def _local(stamp: str) -> str:
    try:
        return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return stamp[:16]
