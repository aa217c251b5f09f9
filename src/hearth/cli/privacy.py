"""`hearth privacy`: where your data is, who can reach this Hearth, and every connection it has made."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from hearth.cli.common import service
from hearth.service import PrivacyReport
from hearth.units import size_text


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--check", is_flag=True, help="Prove offline mode works: a child process tries connections it "
                                            "must block (and loopback, which it must allow).")
@click.option("--last", default=10, show_default=True, help="Egress-log entries to show.")
def privacy(as_json: bool, check: bool, last: int) -> None:
    """Show what Hearth stores and where, whether anything can reach it, and what it sent out."""
    if check:
        _check(as_json)
        return
    report = service().privacy(last=max(0, last))
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    _print(report)


def _print(report: PrivacyReport) -> None:
    click.echo(f"Hearth keeps everything in {report.home} (HEARTH_HOME), readable only by you.\n")
    click.echo("stored on this computer:")
    for item in report.storage:
        size = size_text(item.bytes) if item.exists else "none"
        click.echo(f"  {item.what:<22} {size:>8}   {item.path}")
    kept = f"for {report.history_days} days after last use" if report.history_days else "until you delete them"
    history = f"recorded, kept {kept} (`hearth history rm`)" if report.history_on else "not recorded"
    click.echo(f"  {'conversations':<22} {history}\n")
    click.echo("network:")
    offline = ("on (for this command): every connection that is not loopback is blocked" if report.offline else
               "off (`hearth --offline ...` or HEARTH_OFFLINE=1 blocks every connection that is not loopback)")
    click.echo(f"  {'offline mode':<22} {offline}")
    click.echo(f"  {'telemetry':<22} {report.telemetry}")
    click.echo(f"  {'server':<22} {_server(report)}")
    click.echo(f"  {'paired devices':<22} {', '.join(report.paired_devices) or 'none'}")
    remote = ", ".join(report.remote_engines) or "none: prompts never leave this computer"
    click.echo(f"  {'remote engines':<22} {remote}")
    click.echo("\nconnections Hearth made (egress log, newest last):")
    if not report.egress:
        click.echo("  none")
    for entry in report.egress:
        click.echo("  " + _entry(entry))


def _server(report: PrivacyReport) -> str:
    s = report.server
    if s.running is None:
        return f"set to listen on {s.bind} (not probed: that is not a loopback address)"
    if not s.running:
        return f"not running (it would listen on {s.bind}:{s.url.rsplit(':', 1)[1]})"
    reach = "loopback only" if s.loopback_only else f"listening on {s.bind}: reachable from other computers"
    key = "an API key is required" if s.key_required else "no API key"
    offline = ", in offline mode" if s.offline else ""
    return f"running at {s.url}, {reach}, {key}{offline}"


def _entry(entry: dict[str, Any]) -> str:
    when = str(entry.get("time", ""))[:19].replace("T", " ")
    if entry.get("event") == "done":
        received = size_text(int(entry.get("bytes_received", 0)))
        return (f"{when}  {entry.get('command', '')}: {entry.get('purpose', '')}: {entry.get('connections', 0)} "
                f"connection(s) to {', '.join(entry.get('hosts', []))}, {received} received")
    return (f"{when}  {entry.get('command', '')}: {entry.get('host', '')}:{entry.get('port', '')} "
            f"({entry.get('purpose', '')})")


def _check(as_json: bool) -> None:
    results = service().privacy_check()
    works = bool(results) and all(r.get("blocked") is (name != "loopback allowed") for name, r in results.items())
    if as_json:
        click.echo(json.dumps({"works": works, "attempts": results}, indent=2))
    else:
        click.echo("offline mode's guard, tried in a child process:")
        for name, r in results.items():
            expected = name != "loopback allowed"
            verdict = ("blocked" if r.get("blocked") else "allowed") + ("" if r.get("blocked") is expected else
                                                                        "  <- WRONG")
            click.echo(f"  {verdict:<18} {name}")
        click.echo("the guard works" if works else "the guard does NOT work: please report this")
    if not works:
        sys.exit(1)
