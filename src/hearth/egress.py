"""Every connection Hearth makes, seen from inside the process: offline mode blocks them, the egress log lists them.

Hearth connects to the network only when asked to by name (`pull`, `search`, `fit` of a model it does
not have) and otherwise only listens. `install` puts one audit hook (PEP 578) in the process, which sees
every `socket.connect`, `socket.sendto`/`sendmsg` and name lookup that Python code makes, whichever library
makes it, before the system call:

- **Offline mode** (`offline = true`, `HEARTH_OFFLINE=1`, `--offline`): a connection or datagram to an
  address that is not loopback, and a lookup of a name that is not `localhost` or a loopback literal, raise
  `ConnectionBlockedError` naming the host and the code that tried. Loopback (the local server, its
  clients) and Unix sockets stay allowed. Model workers get the same guard (`WorkerConfig.offline`).
  The service also refuses the commands that need the network up front (`require_network`), so they say
  so instead of failing inside a library.
- **The egress log** (`HEARTH_HOME/egress.log`, JSON lines, 0600, rotated at `LOG_BYTES` into
  `egress.log.1`): one line per connection to a non-loopback address, and per connection of any kind made
  for a named purpose (`purpose("pull NAME")`: so a pull from a loopback mirror is listed too), with the
  time, the command, host, port and purpose; a purpose's last line adds the bytes it received. It never
  holds prompts, answers or tokens: only what the hook sees, which is addresses.

The hook covers Python code in the Hearth process and its workers. Native code that opens sockets itself
would bypass it; llama.cpp's only networking is its RPC backend, which connects only to the `rpc_workers`
you list (each probed from Python first, so logged; refused beyond loopback in offline mode), and the system-call
trace in tests/test_egress.py checks the whole process tree. `python -m hearth.egress --check` is the
child process `hearth privacy --check` runs to prove the guard blocks.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hearth.errors import OfflineError
from hearth.paths import ensure_private_dir

LOG_NAME = "egress.log"
LOG_BYTES = 1 << 20  # rotate past this size (one older file is kept)
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
# frames of these modules are plumbing: the code that "tried" is the first frame outside them
_PLUMBING = ("socket", "ssl", "asyncio", "selectors", "http.client", "urllib", "httpx", "httpx2", "httpcore",
             "h11", "anyio", "sniffio", "hearth.egress", "contextlib", "threading", "concurrent")


class ConnectionBlockedError(PermissionError):
    """Offline mode stopped a connection or a name lookup (an `OSError`, so libraries treat it as one)."""


@dataclass
class Activity:
    """A named piece of network work in progress: what it is for and the bytes it received."""

    what: str
    received: int = 0
    connections: int = 0
    hosts: set[str] = field(default_factory=set)


@dataclass
class _State:
    installed: bool = False
    offline: bool = False
    log: Path | None = None
    command: str = ""
    activities: list[Activity] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


_STATE = _State()
_LOCAL = threading.local()  # the last name this thread looked up, to name the address it connects to


def install(home: Path | None, *, offline: bool, command: str | None = None) -> None:
    """Watch this process's connections (once per process; later calls change the mode and the log)."""
    with _STATE.lock:
        _STATE.offline = offline
        _STATE.log = None if home is None else home / LOG_NAME
        _STATE.command = command or _STATE.command or _command_of(sys.argv)
        if not _STATE.installed:
            sys.addaudithook(_audit)
            _STATE.installed = True


def is_offline() -> bool:
    """Whether offline mode is on in this process."""
    return _STATE.offline


def require_network(what: str) -> None:
    """OfflineError if offline mode is on: `what` (e.g. "`hearth pull`") needs the network."""
    if _STATE.offline:
        raise OfflineError(f"{what} needs the network, and offline mode is on",
                           hint="run it without --offline (or unset HEARTH_OFFLINE / offline in config.toml)")


@contextmanager
def purpose(what: str) -> Iterator[Activity]:
    """Label the connections made inside this block (from any thread) as done for `what`; add the bytes
    received to the returned Activity's `received` for the log's closing line."""
    activity = Activity(what)
    with _STATE.lock:
        _STATE.activities.append(activity)
    try:
        yield activity
    finally:
        with _STATE.lock:
            _STATE.activities.remove(activity)
        if activity.connections:
            _write({"event": "done", "purpose": what, "hosts": sorted(activity.hosts),
                    "connections": activity.connections, "bytes_received": activity.received})


def read_log(home: Path, last: int = 20) -> list[dict[str, Any]]:
    """The newest `last` entries of the egress log (older file first), skipping damaged lines."""
    lines: list[str] = []
    for path in (home / f"{LOG_NAME}.1", home / LOG_NAME):
        try:
            lines += path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
    entries = []
    for line in lines[-last:] if last else lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


# -- the hook --------------------------------------------------------------------------------------------------
def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not event.startswith("socket."):
        return
    if event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex", "socket.gethostbyaddr"):
        _lookup(str(args[0]) if args and args[0] is not None else "")
    elif event in ("socket.connect", "socket.sendto", "socket.sendmsg") and len(args) >= 2:
        _connect(args[0], args[1], event)


def _lookup(host: str) -> None:
    host = host.strip("[]").lower()
    _LOCAL.host = host
    if _STATE.offline and not is_loopback(host) and not _is_address(host):  # an address: see _connect
        raise ConnectionBlockedError(_blocked(f"a lookup of {host!r}"))


def _connect(sock: Any, address: Any, event: str) -> None:
    family = getattr(sock, "family", None)
    if family not in (socket.AF_INET, socket.AF_INET6) or not isinstance(address, tuple) or not address:
        return  # Unix sockets, socket pairs, or a connected socket's plain send
    host, port = str(address[0]), address[1] if len(address) > 1 else 0
    loopback = is_loopback(host)
    if _STATE.offline and not loopback:
        kind = "a connection to" if event == "socket.connect" else "a datagram to"
        raise ConnectionBlockedError(_blocked(f"{kind} {host}:{port}"))
    with _STATE.lock:
        activities = list(_STATE.activities)
    if loopback and not activities:
        return
    name = getattr(_LOCAL, "host", "") or host
    for activity in activities:
        activity.connections += 1
        activity.hosts.add(name)
    _write({"event": "connect" if event == "socket.connect" else "datagram", "host": name, "address": host,
            "port": port, "purpose": "; ".join(a.what for a in activities) or "unrequested"})


def _blocked(what: str) -> str:
    return (f"offline mode blocked {what} by {_culprit()} (during `{_STATE.command}`): Hearth makes no "
            "network connections in offline mode")


def _culprit() -> str:
    frame = sys._getframe(1)
    while frame is not None:
        module = str(frame.f_globals.get("__name__", "?"))
        if not any(module == p or module.startswith(p + ".") for p in _PLUMBING):
            return module
        frame = frame.f_back  # type: ignore[assignment]
    return "unknown code"


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address) is this machine's loopback."""
    host = host.strip("[]").split("%")[0].lower()
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return True


def _write(entry: dict[str, Any]) -> None:
    log = _STATE.log
    if log is None:
        return
    entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": _STATE.command, **entry}
    line = (json.dumps(entry, ensure_ascii=True) + "\n").encode()
    try:
        if log.stat().st_size + len(line) > LOG_BYTES:
            os.replace(log, log.with_name(LOG_NAME + ".1"))
    except OSError:
        pass
    try:
        ensure_private_dir(log.parent)  # a first pull may come before anything else made HEARTH_HOME
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    except OSError:  # a read-only home: the connection itself is not refused for that
        return
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def _command_of(argv: list[str]) -> str:
    name = Path(argv[0]).name if argv else "python"
    first = next((a for a in argv[1:] if not a.startswith("-")), "")
    return f"{name} {first}".strip()


# -- the self-check `hearth privacy --check` runs in a child process -------------------------------------------
def check() -> dict[str, Any]:
    """Turn offline mode on here, try what it must block and what it must allow; report each outcome."""
    install(None, offline=True, command="hearth privacy --check")
    results: dict[str, Any] = {}
    for label, attempt in (("connect 192.0.2.1:443", lambda: socket.create_connection(("192.0.2.1", 443), 2)),
                           ("look up huggingface.co", lambda: socket.getaddrinfo("huggingface.co", 443)),
                           ("send a datagram to 9.9.9.9:53", _datagram)):
        try:
            attempt()
        except ConnectionBlockedError as err:
            results[label] = {"blocked": True, "error": str(err)}
        except OSError as err:
            results[label] = {"blocked": False, "error": f"not blocked by the guard: {err}"}
        else:
            results[label] = {"blocked": False, "error": "not blocked: the connection was made"}
    results["loopback allowed"] = {"blocked": not _loopback_works(), "error": ""}
    return results


def _datagram() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"x", ("9.9.9.9", 53))


def _loopback_works() -> bool:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        try:
            with socket.create_connection(server.getsockname(), 2):
                return True
        except OSError:
            return False


if __name__ == "__main__" and sys.argv[1:] == ["--check"]:
    print(json.dumps(check()))
