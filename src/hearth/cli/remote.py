"""`hearth remote`: register models served elsewhere (vLLM, llama-server, LM Studio, Ollama, another Hearth)."""

from __future__ import annotations

import json

import click

from hearth.cli.common import service
from hearth.errors import InvalidRequestError


@click.group()
def remote() -> None:
    """Models that run on another server, used like local ones (prompts sent to them leave this computer)."""


@remote.command("add")
@click.argument("name_or_url")
@click.argument("url", required=False)
@click.option("--model", "model", default=None, help="The model id on that server (needed if it offers several).")
@click.option("--api", type=click.Choice(["openai", "ollama"]), default="openai", show_default=True,
              help="The server's API: OpenAI-compatible (/v1) or Ollama's (/api).")
@click.option("--key-env", default=None, metavar="VAR",
              help="The environment variable that holds its API key (the key itself is never stored).")
def add(name_or_url: str, url: str | None, model: str | None, api: str, key_env: str | None) -> None:
    """Register NAME for a model at URL; with only a URL, list what that server offers."""
    if url is None:
        if "://" not in name_or_url:
            raise InvalidRequestError("give a NAME and a URL, or a URL alone to see what it offers",
                                      hint="e.g. `hearth remote add box http://10.0.0.5:8080 --model llama3`")
        models, kind = service().remote_offered(name_or_url, api=api, key_env=key_env)
        click.echo(f"{name_or_url} ({kind}, {api} API) offers {len(models)} model(s):")
        for model_id in models:
            click.echo(f"  {model_id}")
        return
    added = service().remote_add(name_or_url, url, model=model, api=api, key_env=key_env)
    key = f", key from ${added.key_env}" if added.key_env else ""
    click.echo(f"registered {added.name}: {added.model} at {added.url} ({added.server}, {added.api} API{key})")


@remote.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_remotes(as_json: bool) -> None:
    """The registered remote models."""
    remotes = service().remote_list()
    if as_json:
        click.echo(json.dumps([{"name": r.name, "url": r.url, "api": r.api, "model": r.model, "server": r.server,
                                "key_env": r.key_env} for r in remotes], indent=2))
        return
    if not remotes:
        click.echo("no remote models (`hearth remote add NAME URL --model ID` registers one)")
        return
    click.echo(f"{'NAME':<28} {'API':<7} {'SERVER':<18} MODEL AT URL")
    for r in remotes:
        click.echo(f"{r.name:<28} {r.api:<7} {r.server:<18} {r.model} at {r.url}")


@remote.command("rm")
@click.argument("name")
def remove(name: str) -> None:
    """Forget a remote model (nothing on the server changes)."""
    gone = service().remote_remove(name)
    click.echo(f"removed {gone.name} ({gone.where})")
