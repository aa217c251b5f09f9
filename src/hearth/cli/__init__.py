"""The `hearth` command: thin click commands over `hearth.service.Hearth`.

`main()` turns every `HearthError` into a sentence and a hint on stderr (exit status 1), and Ctrl-C into
exit status 130: users never see a traceback.
"""

from __future__ import annotations

import os
import sys

import click

from hearth import __version__
from hearth.cli.bundle import bundle
from hearth.cli.catalog import catalog
from hearth.cli.chat import chat
from hearth.cli.common import close_service, fail
from hearth.cli.create import create
from hearth.cli.devices import devices
from hearth.cli.docs import docs
from hearth.cli.fit import fit
from hearth.cli.history import history
from hearth.cli.models import copy, import_, list_, remove, show
from hearth.cli.privacy import privacy
from hearth.cli.pull import pull
from hearth.cli.remote import remote
from hearth.cli.rpc import rpc_worker
from hearth.cli.run import run
from hearth.cli.search import search
from hearth.cli.tune import tune
from hearth.egress import ConnectionBlockedError
from hearth.errors import HearthError, OfflineError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hearth")
@click.option("--offline", is_flag=True, help="Offline mode: block every connection that is not loopback, and "
                                               "refuse commands that need the network (also HEARTH_OFFLINE=1).")
def cli(offline: bool) -> None:
    """Run open LLMs on your own computer."""
    if offline:  # read by the settings (this process and the model workers it starts)
        os.environ["HEARTH_OFFLINE"] = "1"


for command in (run, chat, list_, show, remove, copy, import_, create, history, bundle):
    cli.add_command(command)

for command in (pull, fit, search, catalog, tune):  # getting models, "will it fit?", and "how fast?"
    cli.add_command(command)

cli.add_command(privacy)
cli.add_command(devices)  # phones paired with the web page (docs/web.md)
cli.add_command(rpc_worker)  # lend this machine to a Hearth elsewhere (docs/rpc.md)
cli.add_command(remote)
cli.add_command(docs)  # chat with your documents (docs/documents.md)

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
    except ConnectionBlockedError as err:  # offline mode stopped a library's connection we did not foresee
        fail(OfflineError(str(err), hint="run it without --offline (or unset HEARTH_OFFLINE)"))
    except BrokenPipeError:  # `hearth run ... | head`
        sys.stderr.close()
        sys.exit(0)
    sys.exit(0)
