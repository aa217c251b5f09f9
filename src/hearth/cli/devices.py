"""`hearth devices`: the phones and browsers paired with this Hearth, a new pairing code, and revoking one.

Also what `hearth serve` prints once it listens: the page's address and, with `--lan`, a QR code (segno)
carrying a one-time pairing code for a phone to scan.
"""

from __future__ import annotations

import sys
import threading
import webbrowser
from datetime import datetime

import click

from hearth.cli.common import service
from hearth.cli.serve import url_of
from hearth.config import Settings, load_settings
from hearth.errors import InvalidOptionError
from hearth.service import Hearth, PairingCode


def show_pairing(url: str, code: PairingCode) -> None:
    """Print the pairing link (as a QR code on a terminal) and the code to type instead."""
    link = f"{url}/?pair={code.code}"
    minutes = max(1, round((code.expires_at - datetime.now().timestamp()) / 60))
    if sys.stderr.isatty():
        import segno

        segno.make(link, error="m").terminal(out=sys.stderr, compact=True)
    click.echo(f"Pair a phone or another computer on this network: scan the QR code or open {link}\n"
               f"(or type the code {code.code[:5]}-{code.code[5:]} on the page; it works once, for {minutes} "
               f"minutes). The LAN connection is not encrypted: pair only on a network you trust.", err=True)


def announce(hearth: Hearth, settings: Settings, open_page: bool = False) -> None:
    """What `hearth serve` says once it listens: where the page is, and how to pair a phone with `lan`."""
    local = url_of(settings.host, settings.port)
    click.echo(f"Chat in your browser: {local}/", err=True)
    if settings.lan:
        show_pairing(url_of(settings.lan, settings.port), hearth.devices.new_code())
    if open_page:  # after uvicorn has started: the browser's first request must find it listening
        threading.Timer(0.5, webbrowser.open, args=(f"{local}/",)).start()


@click.group(invoke_without_command=True)
@click.pass_context
def devices(ctx: click.Context) -> None:
    """List the devices paired with the web page (`hearth serve --lan`); pair or revoke one."""
    if ctx.invoked_subcommand is not None:
        return
    found = service().devices.list()
    if not found:
        click.echo("No paired devices. `hearth serve --lan` shows a pairing QR code; `hearth devices pair` "
                   "makes another.")
        return
    click.echo(f"{'ID':<10} {'PAIRED':<17} {'LAST SEEN':<17} NAME")
    for d in found:
        paired = datetime.fromtimestamp(d.paired_at).strftime("%Y-%m-%d %H:%M")
        seen = datetime.fromtimestamp(d.last_seen).strftime("%Y-%m-%d %H:%M")
        click.echo(f"{d.id:<10} {paired:<17} {seen:<17} {d.name[:60]}")


@devices.command()
@click.option("--url", help="The address the phone opens (default: this machine's LAN address and the port).")
def pair(url: str | None) -> None:
    """Make a one-time pairing code (a QR code) for a running `hearth serve --lan`."""
    from hearth.server import lan_address

    settings = load_settings()
    if url is None:
        try:
            url = url_of(lan_address(settings.lan or "auto"), settings.port)
        except InvalidOptionError:
            url = url_of(settings.host, settings.port)
    show_pairing(url.rstrip("/"), service().devices.new_code())


@devices.command()
@click.argument("device_id")
def revoke(device_id: str) -> None:
    """Unpair a device (by its id or the start of it): its next request gets 401."""
    gone = service().devices.revoke(device_id)
    click.echo(f"revoked {gone.id} ({gone.name[:60]})")
