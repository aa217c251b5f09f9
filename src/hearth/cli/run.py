"""`hearth run MODEL "prompt"`: one answer, streamed; stdin is read when piped; `--json` for scripts."""

from __future__ import annotations

import json
import sys

import click

from hearth.cli.common import cli_options, print_engine, print_stats, service
from hearth.cli.docs import answer_from_docs, print_sources
from hearth.cli.history import begin_chat
from hearth.cli.pull import ensure_local
from hearth.errors import InvalidRequestError
from hearth.options import Options
from hearth.types import Done, Event, Message, Notice, TextChunk


@click.command()
@click.argument("model")
@click.argument("prompt", nargs=-1)
@click.option("--system", "-s", help="System prompt for this answer.")
@click.option("--option", "-o", "options", multiple=True, metavar="KEY=VALUE",
              help="Sampling/context option with Ollama's names: temperature, num_predict, num_ctx, top_k, "
                   "top_p, min_p, repeat_penalty, seed, stop (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the answer and statistics.")
@click.option("--verbose", "-v", is_flag=True, help="Print timings after the answer (Ollama's format).")
@click.option("--raw", is_flag=True, help="Send the prompt as-is, without the chat template.")
@click.option("--no-history", is_flag=True, help="Do not record this prompt and answer in the history.")
@click.option("--docs", "collection", metavar="COLLECTION",
              help="Answer from the passages of a document collection (`hearth docs add`), citing them as [1].")
@click.option("--pull", "pull_missing", is_flag=True,
              help="Download MODEL first, without asking, if it is a catalog or hf.co name you do not have.")
def run(model: str, prompt: tuple[str, ...], system: str | None, options: tuple[str, ...], as_json: bool,
        verbose: bool, raw: bool, no_history: bool, pull_missing: bool, collection: str | None) -> None:
    """Answer PROMPT with MODEL (reads the prompt from stdin when piped; no prompt starts a chat)."""
    model = ensure_local(model, pull=pull_missing)
    text = " ".join(prompt)
    if not sys.stdin.isatty():
        piped = sys.stdin.read()
        text = f"{text}\n\n{piped}" if text and piped.strip() else (text or piped)
    elif not text:
        from hearth.cli.chat import repl

        repl(model, system=system, options=cli_options(options),
             start=begin_chat(model, system, no_history=no_history), docs=collection)
        return
    if not text.strip():
        raise InvalidRequestError("the prompt is empty", hint='e.g. hearth run smollm2:135m "Why is the sky blue?"')
    if collection:
        _run_with_docs(model, text, system, cli_options(options), collection, as_json=as_json, verbose=verbose,
                       record=not no_history, raw=raw)
        return
    generation = service().generate(model, text, cli_options(options), system=system, raw=raw)

    def show(event: Event) -> None:
        if isinstance(event, TextChunk) and not as_json:
            sys.stdout.write(event.text)
            sys.stdout.flush()
        elif isinstance(event, Notice):
            click.secho(f"Note: {event.message}", fg="yellow", err=True)

    answer = generation.consume(show)
    done = answer.done
    warning = service().conversations.record_run(generation, answer, text, system=system, raw=raw,
                                                 record=not no_history)
    if warning:
        click.secho(f"Note: {warning}", fg="yellow", err=True)
    if as_json:
        click.echo(json.dumps(_result(generation.model, answer.text, done), ensure_ascii=False))
    else:
        sys.stdout.write("\n")
        sys.stdout.flush()
    if verbose:
        print_stats(done.stats)
        print_engine(generation.model)


def _run_with_docs(model: str, text: str, system: str | None, options: Options, collection: str, *,
                   as_json: bool, verbose: bool, record: bool, raw: bool) -> None:
    """`hearth run --docs`: the answer from the collection's passages, then the sources it cites."""
    if raw:
        raise InvalidRequestError("--raw and --docs do not go together: passages go through the chat template")

    def show(piece: str) -> None:
        if not as_json:
            sys.stdout.write(piece)
            sys.stdout.flush()

    messages = ([Message("system", system)] if system else []) + [Message("user", text)]
    answer, generation, cited = answer_from_docs(model, messages, collection, options, show)
    warning = service().conversations.record_run(generation, answer, text, system=system, record=record)
    if warning:
        click.secho(f"Note: {warning}", fg="yellow", err=True)
    if as_json:
        click.echo(json.dumps({**_result(generation.model, answer.text, answer.done),
                               "sources": cited.sources_json()}, ensure_ascii=False))
    else:
        sys.stdout.write("\n\n")
        print_sources(cited)
    if verbose:
        print_stats(answer.done.stats)
        print_engine(generation.model)


def _result(model: str, text: str, done: Done) -> dict[str, object]:
    s = done.stats
    return {
        "model": model, "response": text, "done_reason": done.reason,
        "prompt_eval_count": s.prompt_tokens, "prompt_cache_count": s.cached_tokens,
        "eval_count": s.completion_tokens, "load_duration": s.load_ns, "prompt_eval_duration": s.prompt_ns,
        "eval_duration": s.eval_ns, "total_duration": s.total_ns + s.load_ns,
    }
