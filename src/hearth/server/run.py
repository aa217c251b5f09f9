"""Starting the server: refuse unsafe binds, claim the port, run uvicorn with the app."""

from __future__ import annotations

import asyncio
import ipaddress
import signal
import socket
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from hearth.config import Settings
from hearth.errors import HearthError, InvalidOptionError
from hearth.server.runtime import Runtime
from hearth.server.security import is_loopback

if TYPE_CHECKING:
    from hearth.service import Hearth

Announce = Callable[["Hearth", Settings], None]


def check_bind(settings: Settings) -> None:
    """Refuse to listen beyond this machine without an API key, or with every web origin allowed."""
    any_origin = any(o.strip() == "*" for o in settings.cors_origins)
    if any_origin and not is_loopback(settings.host):
        raise InvalidOptionError(
            "refusing to listen beyond this machine with cors_origins = \"*\": any web page its users open "
            "could call the API with their browsers", field="cors_origins",
            hint="list the exact origins that may call the API (--cors-origin https://app.example)")
    if any_origin:
        print("Warning: cors_origins \"*\" lets every web page you open call this server's API.",
              file=sys.stderr, flush=True)
    if is_loopback(settings.host) or settings.api_key:
        return
    if settings.lan and settings.lan.strip("[]") == settings.host.strip("[]"):
        return  # `--lan ADDRESS --host ADDRESS`: the same as `--lan`, paired devices only
    where = settings.host or "all interfaces"
    raise InvalidOptionError(
        f"refusing to listen on {where} without an API key: anyone who can reach this machine on port "
        f"{settings.port} could use your models",
        hint="set an API key (HEARTH_API_KEY=... or api_key in config.toml), or listen on 127.0.0.1",
        field="host",
    )


def lan_address(value: str) -> str:
    """The address `lan` names: "auto" is this machine's own LAN address; another must be one of its own."""
    import psutil

    stats = psutil.net_if_stats()
    mine: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for name, addrs in psutil.net_if_addrs().items():
        if name in stats and not stats[name].isup:
            continue
        for addr in addrs:
            if addr.family in (socket.AF_INET, socket.AF_INET6):
                try:
                    mine.append(ipaddress.ip_address(addr.address.split("%")[0]))
                except ValueError:
                    continue
    if value.strip().lower() != "auto":
        try:
            wanted = ipaddress.ip_address(value.strip().strip("[]"))
        except ValueError:
            raise InvalidOptionError(f"lan must be an address of this machine or auto, not {value[:80]!r}",
                                     field="lan") from None
        if wanted not in mine:
            raise InvalidOptionError(f"{wanted} is not an address of this machine", field="lan",
                                     hint="`--lan` alone picks this machine's LAN address")
        return str(wanted)
    usable = [a for a in mine if a.version == 4 and not (a.is_loopback or a.is_link_local)]
    usable.sort(key=lambda a: not a.is_private)  # a home network's 192.168.x.y before anything else
    if not usable:
        raise InvalidOptionError("this machine has no LAN address to listen on", field="lan",
                                 hint="connect to a network, or give the address: --lan 192.168.1.20")
    return str(usable[0])


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port; HearthError with a readable reason if that fails."""
    name = host.strip("[]") or "0.0.0.0"
    family = socket.AF_INET6 if ":" in name else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((name, port))
        sock.listen(128)
    except OSError as err:
        sock.close()
        raise HearthError(f"cannot listen on {host}:{port}: {err.strerror or err}",
                          hint="is Hearth already running? (`hearth ps`) Otherwise choose another --port") from None
    sock.set_inheritable(True)
    return sock


class _TimedH11(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, which closes a connection whose request headers do not arrive in time.

    uvicorn times out idle keep-alive connections, but not a first request trickled in byte by byte (a
    slowloris), which would otherwise hold a connection, and a slot of `max_connections`, forever.
    """

    header_timeout = 30.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def handle_events(self) -> None:
        super().handle_events()
        if self._header_timer is not None and self.conn.their_state is not h11.IDLE:
            self._header_timer.cancel()  # the headers are in: from here the body timeout applies
            self._header_timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        super().connection_lost(exc)

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def protocol(settings: Settings) -> type[H11Protocol]:
    """The HTTP protocol class for a server with `settings` (its header timeout)."""
    return type("TimedH11", (_TimedH11,), {"header_timeout": max(0.1, settings.request_timeout)})


class _Server(uvicorn.Server):
    """uvicorn's server, which first ends the running answers when asked to stop."""

    def __init__(self, config: uvicorn.Config, runtime: Runtime) -> None:
        super().__init__(config)
        self.runtime = runtime

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # Without this uvicorn waits for streams to end on their own, then cuts them mid-line after the
        # grace period. Cancelled, each stream ends at the next decoding step with an in-band error event.
        self.runtime.interrupt_all("the server is shutting down")
        await super().shutdown(sockets)


def serve(settings: Settings, announce: Announce | None = None) -> None:
    """Run the server in the foreground until interrupted; models are unloaded on the way out.

    `announce(service, settings)` runs once the sockets listen (`hearth serve` prints the page's address,
    the pairing QR code with `lan`, and opens a browser with `--open`).
    """
    from hearth.server.app import create_app
    from hearth.service import Hearth

    if settings.lan:
        settings = settings.merged({"lan": lan_address(settings.lan)})
    check_bind(settings)
    sockets = [bind_socket(settings.host, settings.port)]
    if settings.lan and settings.lan != settings.host.strip("[]"):
        try:
            sockets.append(bind_socket(settings.lan, settings.port))
        except HearthError:
            sockets[0].close()
            raise
    service = Hearth(settings)
    app = create_app(service, settings, own_service=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5,
                            lifespan="on", http=protocol(settings), loop="asyncio", server_header=False,
                            limit_concurrency=max(1, settings.max_connections))
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    auth = "an API key is required" if settings.api_key else "no API key (loopback only)"
    if settings.lan:
        auth += "; paired devices on the LAN"
    print(f"Hearth is listening on http://{host}:{settings.port} — the chat page is at /, OpenAI and Anthropic "
          f"APIs at /v1, Ollama API at /api; {auth}. Press Ctrl-C to stop.", file=sys.stderr, flush=True)
    if announce is not None:
        announce(service, settings)
    if threading.current_thread() is threading.main_thread():
        # uvicorn shuts down gracefully on SIGTERM, then re-raises it with the handler found at start: make
        # that one a clean exit (status 0) rather than death by signal.
        signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        _Server(config, app.state.runtime).run(sockets=sockets)
    finally:
        for sock in sockets:
            sock.close()
        service.close()


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)
