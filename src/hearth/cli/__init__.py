"""The `hearth` command: thin click commands over `hearth.service.Hearth`.

`main()` turns every `HearthError` into a sentence and a hint on stderr (exit status 1), and Ctrl-C into
exit status 130: users never see a traceback.
"""

from __future__ import annotations

import sys

import click

from hearth import __version__
from hearth.cli.catalog import catalog
from hearth.cli.chat import chat
from hearth.cli.common import close_service, fail
from hearth.cli.create import create
from hearth.cli.fit import fit
from hearth.cli.history import history
from hearth.cli.models import copy, import_, list_, remove, show
from hearth.cli.pull import pull
from hearth.cli.run import run
from hearth.cli.search import search
from hearth.cli.tune import tune
from hearth.errors import HearthError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hearth")
def cli() -> None:
    """Run open LLMs on your own computer."""


for command in (run, chat, list_, show, remove, copy, import_, create, history):
    cli.add_command(command)

for command in (pull, fit, search, catalog, tune):  # getting models, "will it fit?", and "how fast?"
    cli.add_command(command)

try:  # the server commands arrive with their own room
    from hearth.cli.serve import ps, serve, stop

    for command in (serve, ps, stop):
        cli.add_command(command)
except ImportError:  # pragma: no cover
    pass


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `hearth` console script and `python -m hearth`."""
    try:
        try:
            cli.main(args=argv, prog_name="hearth", standalone_mode=False)
        finally:
            close_service()
    except HearthError as err:
        fail(err)
    except click.exceptions.Abort:
        click.echo("", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except BrokenPipeError:  # `hearth run ... | head`
        sys.stderr.close()
        sys.exit(0)
    sys.exit(0)
