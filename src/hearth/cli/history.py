"""`hearth history ...`, and the helpers that let `hearth chat` and `hearth run` record, resume and fork.

Recording never stops a chat: if the database cannot be written, the chat says so once and goes on
unrecorded. `--no-history` on `chat`, `run` and `history replay`, or the setting `history = false`,
records nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from dataclasses import asdict, dataclass, field
from datetime import datetime
from itertools import zip_longest
from pathlib import Path
from typing import Any

import click

from hearth.cli.common import parse_option_pairs, service
from hearth.config import load_settings
from hearth.errors import EngineError, HearthError, InvalidRequestError, NotFoundError
from hearth.history import MARK_END, MARK_START, Conversation, Entry, History, open_history, to_json, to_markdown
from hearth.history.db import default_path
from hearth.paths import hearth_home
from hearth.service.generation import Generation
from hearth.service.recording import model_used
from hearth.store import BUNDLED_NAME
from hearth.types import Done, Message, Notice, TextChunk

LATEST = "\x00latest"  # the value of a bare `--continue`


# -- recording from chat and run -------------------------------------------------------------------------------

class ChatRecorder:
    """Records one terminal conversation, creating it at the first answer."""

    def __init__(self, history: History | None, conversation_id: str | None = None, system: str | None = None,
                 source: str = "chat", parent_id: str | None = None) -> None:
        self.history = history
        self.conversation_id = conversation_id
        self.recorded_system = system  # the system prompt the record already holds
        self.source = source
        self.parent_id = parent_id

    def turn(self, system: str | None, question: str, answer: str, generation: Generation,
             options: dict[str, Any], done: Done) -> None:
        """Record a question and its answer (and the system prompt, when it changed) in one transaction."""
        if self.history is None:
            return
        entries = [Entry("system", system)] if system and system != self.recorded_system else []
        entries += [Entry("user", question),
                    Entry("assistant", answer, model_used(generation, options), done.stats, done.reason)]
        try:
            if self.conversation_id is None:
                self.conversation_id = self.history.start(self.source, entries, parent_id=self.parent_id)
            else:
                self.history.append(self.conversation_id, entries)
            self.recorded_system = system or self.recorded_system
        except HearthError as err:
            click.secho(f"[history: {err.message}; the rest of this chat is not recorded]", fg="yellow", err=True)
            self.history = None

    def new_conversation(self) -> None:
        """After /clear: the next answer starts a new conversation."""
        self.conversation_id, self.recorded_system = None, None


@dataclass
class ChatStart:
    """How a chat begins: its model, system prompt, earlier messages, recorder, and a question to answer."""

    model: str
    system: str | None
    recorder: ChatRecorder
    messages: list[Message] = field(default_factory=list)
    pending: str | None = None
    note: str | None = None


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
    """Work out how `hearth chat` starts: fresh, continuing a recorded conversation, or forking one."""
    if resume is not None and fork is not None:
        raise click.UsageError("use either --continue or --fork, not both")
    if at is not None and fork is None:
        raise click.UsageError("--at goes with --fork ID")
    settings = service().settings
    recording = settings.history and not no_history
    if resume is None and fork is None:
        return ChatStart(model or BUNDLED_NAME, system, ChatRecorder(_recording_history() if recording else None))
    history = open_history(settings)
    conversation = _find(history, resume, model) if fork is None else history.get(fork)
    kept = len(conversation.messages) if at is None else at
    if not 1 <= kept <= len(conversation.messages):
        raise InvalidRequestError(f"conversation {conversation.id} has {len(conversation.messages)} messages; "
                                  f"--at must be between 1 and {len(conversation.messages)}")
    earlier = [m.as_message() for m in conversation.messages[:kept]]
    pending = earlier.pop().content if fork is not None and earlier[-1].role == "user" else None
    systems = [m.content for m in earlier if m.role == "system"]
    cid = conversation.id
    if fork is not None:
        cid = history.fork(conversation.id, len(earlier)) if recording else None
    recorder = ChatRecorder(history if recording else None, cid, systems[-1] if systems else None)
    used = [m.model for m in conversation.messages if m.model]
    how = "Continuing" if fork is None else f"Forked at message {kept} of"
    note = f"{how} conversation {conversation.id} ({len(earlier)} messages)."
    return ChatStart(model or (used[-1] if used else BUNDLED_NAME), system or (systems[-1] if systems else None),
                     recorder, [m for m in earlier if m.role != "system"], pending, note)


def _recording_history() -> History | None:
    """The history to record a new chat in, or None (with a note) if it cannot be opened."""
    try:
        return open_history(service().settings)
    except HearthError as err:
        click.secho(f"[history: {err.message}; this chat is not recorded]", fg="yellow", err=True)
        return None


def _find(history: History, resume: str, model: str | None) -> Conversation:
    if resume == LATEST:
        latest = history.latest()
        if latest is None:
            raise NotFoundError("there is no recorded conversation to continue yet",
                                hint="start one with `hearth chat`")
        return history.get(latest)
    try:
        return history.get(resume)
    except NotFoundError as err:
        if model is None and ":" in resume:
            err.hint = ("to continue the latest conversation with a model, put the model first: "
                        f"hearth chat {resume} --continue")
        raise


def show_start(start: ChatStart) -> None:
    """Remind the user where a continued or forked conversation stands."""
    if start.note is None:
        return
    click.secho(start.note, dim=True, err=True)
    for message in start.messages[-2:]:
        text = message.content if len(message.content) <= 300 else message.content[:300] + "…"
        click.secho(f"{'>>> ' if message.role == 'user' else ''}{text}", dim=True, err=True)


def record_run(generation: Generation, options: dict[str, Any], system: str | None, prompt: str, answer: str,
               done: Done, *, raw: bool, skip: bool = False) -> None:
    """Record a `hearth run` answer as a conversation of its own (a warning, never an error, if it fails)."""
    settings = service().settings
    if skip or not settings.history:
        return
    entries = [Entry("system", system)] if system and not raw else []
    entries += [Entry("user", prompt), Entry("assistant", answer, model_used(generation, options, raw=raw),
                                             done.stats, done.reason)]
    try:
        with open_history(settings) as history:
            history.start("run", entries)
    except HearthError as err:
        click.secho(f"Note: the answer was not recorded in the history: {err.message}", fg="yellow", err=True)


# -- hearth history ----------------------------------------------------------------------------------------------

@click.group("history")
def history() -> None:
    """Your recorded conversations: list, show, search, export, replay and delete them."""


def _open() -> History:
    return open_history(load_settings())


@history.command("list")
@click.option("--limit", "-n", default=20, show_default=True, help="How many conversations to show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(limit: int, as_json: bool) -> None:
    """List conversations, most recent first."""
    with _open() as log:
        rows = log.list(limit)
    if as_json:
        click.echo(json.dumps([asdict(r) for r in rows], indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo("No conversations recorded yet." + ("" if load_settings().history else
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
    with _open() as log:
        found = log.get(conversation)
    if as_json:
        click.echo(to_json(found), nl=False)
        return
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
    with _open() as log:
        hits = log.search(" ".join(words), limit)
    if as_json:
        click.echo(json.dumps([{**asdict(h), "snippet": _plain(h.snippet)} for h in hits], indent=2,
                              ensure_ascii=False))
        return
    if not hits:
        click.echo(f"No messages match {' '.join(words)!r}.")
        return
    for h in hits:
        snippet = " ".join(h.snippet.split())
        styled = snippet.replace(MARK_START, "\x1b[1m").replace(MARK_END, "\x1b[0m")
        click.echo(f"{h.conversation_id}  [{h.position}] {h.role:<9} {_local(h.created_at)}  ", nl=False)
        click.echo(styled if click.get_text_stream("stdout").isatty() else _plain(snippet))


@history.command()
@click.argument("conversation")
@click.option("--format", "fmt", type=click.Choice(["md", "json"]), default="md", show_default=True,
              help="Markdown to read, JSON with everything recorded.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file (readable only by you) instead of printing.")
def export(conversation: str, fmt: str, output: Path | None) -> None:
    """Export a conversation as Markdown or JSON."""
    with _open() as log:
        found = log.get(conversation)
    text = to_markdown(found) if fmt == "md" else to_json(found)
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
    with _open() as log:
        if everything:
            if not yes:
                click.confirm(f"Delete all {log.count()} conversations? This cannot be undone.", abort=True)
            count = log.delete_all()
            (hearth_home() / "chat_history").unlink(missing_ok=True)  # the chat's line-editing history
        elif older_than is not None:
            count = log.prune(older_than)
        else:
            count = log.delete(conversations)
        complete = log.erased_completely
    click.echo(f"deleted {count} conversation{'' if count == 1 else 's'}")
    if not complete:
        click.secho("Note: another Hearth process has the history open; the deleted text leaves the database's "
                    "journal file when it closes.", fg="yellow", err=True)


@history.command()
def path() -> None:
    """Print where the history database is (a SQLite file: Datasette and sqlite3 can open it)."""
    click.echo(default_path(hearth_home()))


@history.command()
@click.argument("conversation")
@click.option("--model", "-m", required=True, help="The model to answer the conversation's questions.")
@click.option("--option", "-o", "options", multiple=True, metavar="KEY=VALUE", help="Option for the new answers.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--no-history", is_flag=True, help="Do not record the replay as a new conversation.")
def replay(conversation: str, model: str, options: tuple[str, ...], as_json: bool, no_history: bool) -> None:
    """Ask MODEL a conversation's questions again and show its answers beside the recorded ones."""
    opts = parse_option_pairs(options)
    settings = service().settings
    with _open() as log:
        original = log.get(conversation)
        recorder = ChatRecorder(log if settings.history and not no_history else None, source="replay",
                                parent_id=original.id)
        turns = _replay(original, model, opts, recorder, show=not as_json)
    if as_json:
        click.echo(json.dumps({"conversation": original.id, "model": model, "turns": turns}, indent=2,
                              ensure_ascii=False))


def _replay(original: Conversation, model: str, options: dict[str, Any], recorder: ChatRecorder,
            show: bool) -> list[dict[str, Any]]:
    messages = original.messages
    questions = [i for i, m in enumerate(messages) if m.role == "user"]
    if not questions:
        raise InvalidRequestError(f"conversation {original.id} has no questions to replay")
    if show:
        click.secho(f"Replaying {len(questions)} question(s) of {original.id} with {model}.", dim=True, err=True)
    system: str | None = None
    context: list[Message] = []
    turns = []
    for number, index in enumerate(questions, 1):
        system = next((m.content for m in reversed(messages[:index]) if m.role == "system"), system)
        question = messages[index].content
        before = messages[index + 1] if index + 1 < len(messages) else None
        generation = service().chat(model, ([Message("system", system)] if system else []) + context
                                    + [Message("user", question)], options)
        answer, done = _collect(generation)
        context += [Message("user", question), Message("assistant", answer)]
        recorder.turn(system, question, answer, generation, options, done)
        old = before.content if before is not None and before.role == "assistant" else ""
        old_model = (before.model if before is not None else None) or "(recorded)"
        turns.append({"question": question, "recorded": {"model": old_model, "answer": old},
                      "replayed": {"model": generation.model, "answer": answer, "done_reason": done.reason,
                                   "eval_count": done.stats.completion_tokens}})
        if show:
            _side_by_side(number, question, (old_model, old), (generation.model, answer))
    return turns


def _collect(generation: Generation) -> tuple[str, Done]:
    parts, done = [], None
    for event in generation:
        if isinstance(event, TextChunk):
            parts.append(event.text)
        elif isinstance(event, Notice):
            click.secho(f"[{event.message}]", fg="yellow", err=True)
        elif isinstance(event, Done):
            done = event
    if done is None or done.reason == "error":
        raise EngineError(done.error if done and done.error else "the model stopped unexpectedly")
    return "".join(parts), done


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


def _plain(snippet: str) -> str:
    return snippet.replace(MARK_START, "").replace(MARK_END, "")


def _local(stamp: str) -> str:
    try:
        return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return stamp[:16]
