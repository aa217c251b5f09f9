"""`hearth chat [MODEL]`: an interactive chat in the terminal.

Streaming answers, multi-line input between triple quotes, line editing and a history file (readline),
slash commands, and Ctrl-C that stops the current answer without leaving the chat.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from hearth.cli.common import cli_options, parse_option_pairs, print_engine, print_stats, service
from hearth.cli.docs import answer_from_docs, print_sources
from hearth.cli.functions import load_functions, run_call, tool_schema
from hearth.cli.history import begin_chat, history_options, show_notice, show_start
from hearth.cli.pull import ensure_local
from hearth.errors import EngineError, HearthError, InvalidOptionError
from hearth.options import Options
from hearth.paths import ensure_private_dir, hearth_home
from hearth.types import Done, Event, Message, TextChunk, ThinkingChunk

if TYPE_CHECKING:
    from hearth.service import ChatStart, Recorder

HELP = """Commands:
  /system [TEXT]     show or set the system prompt
  /set KEY VALUE     set an option (temperature, num_predict, num_ctx, top_k, top_p, min_p,
                     repeat_penalty, seed, stop); /set system TEXT sets the system prompt
  /show              show the model, system prompt and options
  /clear             forget the conversation so far
  /model NAME        switch to another model (the conversation is kept)
  /verbose           toggle timings after each answer
  /bye               leave (Ctrl-D works too)
Start and end a message with \"\"\" to write several lines. Ctrl-C stops an answer."""


@click.command()
@click.argument("model", required=False)
@click.option("--system", "-s", help="System prompt for the conversation.")
@click.option("--option", "-o", "options", multiple=True, metavar="KEY=VALUE",
              help="Option with Ollama's names (temperature, num_ctx, seed, ...), repeatable.")
@click.option("--verbose", "-v", is_flag=True, help="Print timings after each answer.")
@history_options
@click.option("--pull", "pull_missing", is_flag=True,
              help="Download MODEL first, without asking, if it is a catalog or hf.co name you do not have.")
@click.option("--functions", "functions_file", type=click.Path(path_type=Path), metavar="FILE.py",
              help="Offer the public functions in FILE.py as tools; each call is shown and confirmed first.")
@click.option("--tool-choice", default="auto", metavar="auto|required|NAME",
              help="With --functions: let the model decide (auto), or make its first reply a call (to NAME).")
@click.option("--docs", "collection", metavar="COLLECTION",
              help="Answer from the passages of a document collection (`hearth docs add`), citing them as [1].")
def chat(model: str | None, system: str | None, options: tuple[str, ...], verbose: bool, no_history: bool,
         resume: str | None, fork: str | None, at: int | None, pull_missing: bool,
         functions_file: Path | None, tool_choice: str, collection: str | None) -> None:
    """Chat with MODEL in the terminal (default: the bundled SmolLM2-135M-Instruct).

    The conversation is recorded in your history (see `hearth history`) unless --no-history is given;
    --continue and --fork pick a recorded one up again, with its model unless MODEL is given.
    """
    if model:
        model = ensure_local(model, pull=pull_missing)
    start = begin_chat(model, system, no_history=no_history, resume=resume, fork=fork, at=at)
    functions = load_functions(functions_file) if functions_file else {}
    repl(start.model, system=start.system, options=cli_options(options), verbose=verbose, start=start,
         functions=functions, tool_choice=tool_choice, docs=collection)


T = TypeVar("T")


def _unless_stopped(answer: Callable[[], T]) -> T | None:
    """`answer()`, or None after saying why there is none: Ctrl-C stopped it, or the engine failed (the chat
    goes on either way)."""
    try:
        return answer()
    except KeyboardInterrupt:
        click.secho("\n[answer stopped]", fg="yellow", err=True)
    except EngineError as err:
        click.secho(f"Error: {err.message}", fg="red", err=True)
    return None


class _Printer:
    """Streams a turn's events to the terminal: the answer on stdout, thinking dimmed, notices in yellow."""

    def __init__(self) -> None:
        self.wrote = False

    def __call__(self, event: Event) -> None:
        if isinstance(event, TextChunk):
            self.wrote = True
            sys.stdout.write(event.text)
            sys.stdout.flush()
        elif isinstance(event, ThinkingChunk):
            click.secho(event.text, dim=True, nl=False)
        elif isinstance(event, Done):  # the end of one round: a blank line after an answer
            sys.stdout.write("\n\n" if self.wrote else "\n")
            self.wrote = False
        else:
            show_notice(event)


class ChatSession:
    """The state of one terminal conversation."""

    def __init__(self, model: str, system: str | None, options: Options, verbose: bool = False) -> None:
        self.model = model
        self.system = system
        self.options = options
        self.verbose = verbose
        self.messages: list[Message] = []
        self.recorder: Recorder | None = None
        self.functions: dict[str, Any] = {}
        self.tool_choice = "auto"
        self.docs: str | None = None  # a document collection to answer from (--docs)

    def ask(self, text: str) -> None:
        """Send one user message and stream the answer; Ctrl-C stops it and keeps the chat going.

        With --functions, tool calls are shown, confirmed, run, and their results sent back (the service's
        tool loop, at most MAX_TOOL_ROUNDS rounds) before the final answer.
        """
        history = ([Message("system", self.system)] if self.system else []) + self.messages
        if self.docs:
            self._ask_docs(text, history)
            return
        tools = [tool_schema(f) for f in self.functions.values()]
        executor = partial(run_call, self.functions) if tools else None
        result = _unless_stopped(lambda: service().chat_turn(
            self.model, [*history, Message("user", text)], self.options, tools=tools,
            tool_choice=self.tool_choice, executor=executor, on_event=_Printer()))
        if result is None:
            return
        self.messages += result.messages
        if self.recorder is not None:
            warning = self.recorder.turn(self.system, text, result.answer, result.generation)
            if warning:
                click.secho(f"[{warning}]", fg="yellow", err=True)
        if self.verbose:
            print_stats(result.answer.done.stats)
            print_engine(self.model)

    def _ask_docs(self, text: str, history: list[Message]) -> None:
        """Answer from the collection's passages (invented citations dropped), then list the sources cited."""
        def show(piece: str) -> None:
            sys.stdout.write(piece)
            sys.stdout.flush()

        found = _unless_stopped(lambda: answer_from_docs(self.model, [*history, Message("user", text)],
                                                         self.docs or "", self.options, show))
        if found is None:
            return
        answer, generation, cited = found
        sys.stdout.write("\n\n")
        print_sources(cited)
        click.echo("")
        self.messages += [Message("user", text), Message("assistant", answer.text)]  # the question without passages
        if self.recorder is not None:
            warning = self.recorder.turn(self.system, text, answer, generation)
            if warning:
                click.secho(f"[{warning}]", fg="yellow", err=True)
        if self.verbose:
            print_stats(answer.done.stats)
            print_engine(self.model)

    def command(self, line: str) -> bool:
        """Run a slash command; False means leave the chat."""
        name, _, arg = line.strip().partition(" ")
        arg = arg.strip()
        name = name.lower()
        if name in ("/bye", "/exit", "/quit"):
            return False
        if name in ("/help", "/?"):
            click.echo(HELP)
        elif name == "/clear":
            self.messages.clear()
            if self.recorder is not None:
                self.recorder.new_conversation()
            click.echo("Cleared the conversation.")
        elif name == "/system":
            self._system(arg)
        elif name == "/set":
            self._set(arg)
        elif name == "/show":
            click.echo(f"model:   {self.model}\nsystem:  {self.system or '(model default)'}\n"
                       f"options: {self.options.requested() or '(model defaults)'}")
        elif name == "/model":
            self._switch(arg)
        elif name == "/verbose":
            self.verbose = not self.verbose
            click.echo(f"Timings {'on' if self.verbose else 'off'}.")
        else:
            click.echo(f"Unknown command {name!r}. Type /? for help.")
        return True

    def _system(self, arg: str) -> None:
        if arg:
            self.system = arg
            click.echo("Set the system prompt.")
        else:
            click.echo(self.system or "(no system prompt: the model's default applies)")

    def _set(self, arg: str) -> None:
        key, _, value = arg.partition(" ")
        if key == "parameter":  # Ollama's "/set parameter temperature 0.5"
            key, _, value = value.strip().partition(" ")
        if key == "system":
            self._system(value.strip())
            return
        if not key or not value.strip():
            click.echo("Usage: /set KEY VALUE (e.g. /set temperature 0.2)")
            return
        try:
            candidate = self.options.merged(parse_option_pairs([f"{key}={value.strip()}"]))
        except InvalidOptionError as err:
            click.secho(f"Error: {err.message}", fg="red", err=True)
            return
        self.options = candidate
        click.echo(f"Set {key} to {value.strip()}.")

    def _switch(self, arg: str) -> None:
        if not arg:
            click.echo(f"Current model: {self.model}")
            return
        try:
            service().load(arg)
        except HearthError as err:
            click.secho(f"Error: {err.message}", fg="red", err=True)
            return
        self.model = arg
        click.echo(f"Now chatting with {arg}.")


def read_message(prompt: str = ">>> ") -> str:
    """One message: a line, or every line between a pair of triple quotes."""
    line = input(prompt)
    if not line.lstrip().startswith('"""'):
        return line
    lines = [line.lstrip()[3:]]
    if lines[0].rstrip().endswith('"""') and len(lines[0].rstrip()) >= 3:
        return lines[0].rstrip()[:-3]
    while True:
        more = input("... ")
        if more.rstrip().endswith('"""'):
            lines.append(more.rstrip()[:-3])
            return "\n".join(lines).strip("\n")
        lines.append(more)


def _setup_readline(keep: bool = True) -> None:
    try:
        import readline
    except ImportError:  # pragma: no cover - Windows without pyreadline
        return
    path = ensure_private_dir(hearth_home()) / "chat_history"
    try:
        readline.read_history_file(path)
    except OSError:
        pass
    readline.set_history_length(1000)
    if not keep:  # --no-history / history = false: what is typed is not written down anywhere
        return
    import atexit

    def save() -> None:
        try:
            readline.write_history_file(path)
            os.chmod(path, 0o600)
        except OSError:
            pass

    atexit.register(save)


def repl(model: str, *, system: str | None = None, options: Options | None = None,
         verbose: bool = False, start: ChatStart | None = None, functions: dict[str, Any] | None = None,
         tool_choice: str = "auto", docs: str | None = None) -> None:
    """Run the interactive chat until /bye or Ctrl-D (recording it unless `start` says otherwise)."""
    session = ChatSession(model, system, options or Options(), verbose)
    session.functions, session.tool_choice, session.docs = functions or {}, tool_choice, docs
    if docs:
        service().documents.show(docs)  # NotFoundError now, not at the first question
    start = start or begin_chat(model, system)
    session.messages, session.recorder = list(start.messages), start.recorder
    name = service().load(model)
    if sys.stdin.isatty():
        _setup_readline(keep=start.recorder.recording)
    click.secho(f"Chatting with {name}. Type /? for help, /bye or Ctrl-D to leave.", dim=True, err=True)
    show_start(start)
    if start.pending:
        click.echo(f">>> {start.pending}")
        session.ask(start.pending)
    while True:
        try:
            line = read_message()
        except EOFError:
            click.echo("", err=True)
            return
        except KeyboardInterrupt:
            click.echo("\nUse Ctrl-D or /bye to leave.", err=True)
            continue
        if line.strip().startswith("/"):
            if not session.command(line):
                return
            continue
        if not line.strip():
            continue
        try:
            session.ask(line)
        except HearthError as err:
            click.secho(f"Error: {err.message}", fg="red", err=True)
            if err.hint:
                click.echo(f"Hint: {err.hint}", err=True)
