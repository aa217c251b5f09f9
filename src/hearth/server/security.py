"""The guard in front of every route: Host check, CORS, API key and request size, as one ASGI middleware.

Checks run in this order, before any route code sees the request:

1. **Host** (DNS-rebinding defence): the `Host` header must name this server: `localhost`, `127.0.0.1`,
   `[::1]` (any port), the address it is bound to, the machine's own names and addresses when bound to all
   interfaces, or an entry of `allowed_hosts` (`*.example.org` wildcards; `*` turns the check off).
   Anything else gets 403, so a web page whose DNS name was re-pointed at 127.0.0.1 learns nothing.
2. **Origin** (CORS and CSRF): browsers send `Origin` on cross-site requests. The server's own loopback
   origin and the `cors_origins` allow-list get `Access-Control-Allow-Origin` (never with credentials);
   any other origin, `null` included, gets 403 and no CORS headers, so a foreign page can neither read
   answers nor fire requests that change state.
3. **Who is asking**: a request passes with the API key (`Authorization: Bearer KEY` or `X-Api-Key: KEY`,
   compared in constant time), with the cookie of a paired device (`hearth devices`), or, when no key
   is set, from loopback. Anything else gets 401: with `lan` on, a phone that has not paired sees the
   page (`/`, `/web/…`) and can pair (`/api/pair`), nothing more. A request that a device cookie lets in
   and that changes state must also carry the page's own `Origin`, so no other site can ride the cookie.
4. **Body size**: a `Content-Length` above `max_body_bytes` gets 413 at once; a body without one is counted
   as it streams in and cut off with 413 at the limit.

Bodies are read as JSON whatever their `Content-Type` says, as Ollama does (its documented `curl -d`
examples send `application/x-www-form-urlencoded`). That opens no CSRF hole: a browser's cross-site
request carries `Origin`, and step 2 refuses it.

It is plain ASGI (not Starlette's BaseHTTPMiddleware) so streamed tokens pass through untouched.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hmac
import ipaddress
import json
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException

from hearth.config import Settings
from hearth.server import errors as wire

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
PUBLIC_PATHS = frozenset({"/health", "/", "/api/pair"})
PUBLIC_PREFIXES = ("/web/",)
DEVICE_COOKIE = "hearth_device"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::", "*"})


class BodyTooLarge(HTTPException):
    """The request body passed `max_body_bytes` while it was being read."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than the {limit}-byte limit")
        self.limit = limit

    def answer(self) -> wire.WireError:
        """The 413 to answer with."""
        return _too_large(self.limit)


class BodyTimeout(HTTPException):
    """The client stopped sending its request body (`request_timeout` passed between two parts)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(408, f"the request body did not arrive within {seconds:g} s")
        self.seconds = seconds

    def answer(self) -> wire.WireError:
        """The 408 to answer with."""
        return wire.WireError(408, f"the request body did not arrive within {self.seconds:g} s",
                              hint="send the whole body at once, or raise request_timeout")


def is_loopback(host: str) -> bool:
    """True if `host` (a name or address) only reaches this machine."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _machine_names() -> set[str]:
    names: set[str] = set()
    try:
        hostname = socket.gethostname().lower()
        names |= {hostname, hostname + ".local", socket.getfqdn().lower()}
    except OSError:  # pragma: no cover
        pass
    try:
        import psutil

        for addrs in psutil.net_if_addrs().values():
            for addr in addrs:
                if addr.family in (socket.AF_INET, socket.AF_INET6):
                    names.add(addr.address.split("%")[0].lower())
    except Exception:  # pragma: no cover - psutil may be unable to list interfaces
        pass
    return names


@dataclass(frozen=True)
class Policy:
    """What the guard accepts, derived from the settings once at start-up."""

    hosts: frozenset[str]
    host_patterns: tuple[str, ...]
    any_host: bool
    origins: frozenset[str]
    any_origin: bool
    api_key: bytes | None
    max_body: int
    body_timeout: float = 30.0
    devices: Callable[[str], bool] | None = None  # is this device token one of a paired device?

    @classmethod
    def from_settings(cls, settings: Settings, devices: Callable[[str], bool] | None = None) -> Policy:
        """The policy for a server started with `settings` (`lan` already resolved to an address)."""
        hosts = set(LOOPBACK_NAMES)
        bind = settings.host.strip("[]").lower()
        if bind in WILDCARD_BINDS:
            hosts |= _machine_names()
        else:
            hosts.add(bind)
        extra = [h.strip().lower().strip("[]") for h in settings.allowed_hosts if h.strip()]
        hosts |= {h for h in extra if "*" not in h}
        port = settings.port
        origins = {f"http://{name}:{port}" for name in ("localhost", "127.0.0.1", "[::1]")}
        if bind not in WILDCARD_BINDS and not is_loopback(bind):
            origins.add(f"http://{_bracket(bind)}:{port}")
        lan = settings.lan.strip("[]").lower()
        if lan:
            hosts.add(lan)
            origins.add(f"http://{_bracket(lan)}:{port}")
        origins |= {o.strip().rstrip("/").lower() for o in settings.cors_origins if o.strip() and o.strip() != "*"}
        return cls(
            hosts=frozenset(hosts), host_patterns=tuple(h for h in extra if "*" in h and h != "*"),
            any_host="*" in extra, origins=frozenset(origins),
            any_origin=any(o.strip() == "*" for o in settings.cors_origins),
            api_key=settings.api_key.encode() if settings.api_key else None,
            max_body=max(1, settings.max_body_bytes), body_timeout=max(0.1, settings.request_timeout),
            devices=devices,
        )

    def host_allowed(self, header: str | None) -> bool:
        """True if a `Host` header value names this server."""
        if self.any_host:
            return True
        if not header:
            return False
        name = _strip_port(header.strip().lower()).rstrip(".")
        if name in self.hosts:
            return True
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.host_patterns)

    def origin_allowed(self, origin: str) -> bool:
        """True if a browser origin may call the API."""
        origin = origin.strip().rstrip("/").lower()
        return self.any_origin or origin in self.origins

    def who(self, headers: dict[bytes, bytes], client: str | None) -> str | None:
        """How a request is let in: "key", "device", "loopback" (no key set), or None (401)."""
        if self.api_key is not None and self.key_ok(headers):
            return "key"
        token = _cookie(headers.get(b"cookie", b""), DEVICE_COOKIE)
        if token and self.devices is not None and self.devices(token):
            return "device"
        if self.api_key is None and client is not None and is_loopback(client):
            return "loopback"
        return None

    def key_ok(self, headers: dict[bytes, bytes]) -> bool:
        """True when no key is needed or the request carries the right one (constant-time comparison)."""
        if self.api_key is None:
            return True
        given = b""
        auth = headers.get(b"authorization", b"")
        scheme, _, token = auth.partition(b" ")
        if scheme.lower() == b"bearer":
            given = token.strip()
        elif b"x-api-key" in headers:
            given = headers[b"x-api-key"].strip()
        return hmac.compare_digest(given, self.api_key)


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _strip_port(host: str) -> str:
    """`name` from `name`, `name:port`, `[v6]` or `[v6]:port`; "" when the header is malformed."""
    if host.startswith("["):
        end = host.find("]")
        rest = host[end + 1:] if end > 0 else "?"
        if rest and not (rest.startswith(":") and rest[1:].isdigit()):
            return ""
        return host[1:end]
    if host.count(":") == 1:
        name, port = host.split(":", 1)
        return name if port.isdigit() else ""
    return host  # a bare IPv6 address, or no port


class Guard:
    """ASGI middleware applying a `Policy` to every HTTP request; `observe` is told each final status."""

    def __init__(self, app: ASGIApp, policy: Policy,
                 observe: Callable[[str, str | None, int], None] | None = None) -> None:
        self.app = app
        self.policy = policy
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # no route speaks WebSocket: refuse before anything else
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        method: str = scope.get("method", "GET")
        headers: dict[bytes, bytes] = {}
        for key, value in scope.get("headers", []):
            headers.setdefault(key.lower(), value)
        status = [0]

        async def observed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self._guarded(scope, receive, observed_send, path, method, headers)
        finally:
            if self.observe is not None:  # routing put the matched route (its path template) in the scope
                self.observe(method, getattr(scope.get("route"), "path", None), status[0] or 500)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send, path: str, method: str,
                       headers: dict[bytes, bytes]) -> None:
        policy = self.policy
        if not policy.host_allowed(_text(headers.get(b"host"))):
            await reject(send, wire.WireError(403, "the Host header does not name this server",
                                              hint="add the name to allowed_hosts if it is yours"), path)
            return
        origin = _text(headers.get(b"origin"))
        cors: list[tuple[bytes, bytes]] = []
        if origin is not None:
            if not policy.origin_allowed(origin):
                await reject(send, wire.WireError(403, f"requests from the web origin {origin[:100]!r} are not "
                                                  "allowed", hint="add it to cors_origins to allow it"), path)
                return
            cors = [(b"access-control-allow-origin", origin.encode()), (b"vary", b"Origin")]
            if method == "OPTIONS" and b"access-control-request-method" in headers:
                await _preflight(send, cors, headers)
                return
        client = scope.get("client")
        public = path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)
        who = policy.who(headers, client[0] if client else None)
        if who is None and not public:
            await reject(send, wire.WireError(
                401, "a valid API key or a paired device is required",
                hint="send the key as 'Authorization: Bearer KEY', or pair this browser: run `hearth devices pair` "
                     "on the computer running Hearth"), path, cors)
            return
        if (who == "device" or path == "/api/pair") and method not in SAFE_METHODS and origin is None:
            await reject(send, wire.WireError(403, "this request must come from Hearth's own page",
                                              hint="a paired device's cookie only works from the page itself"),
                         path, cors)
            return
        length = _text(headers.get(b"content-length"))
        if length is not None:
            if not length.isdigit():
                await reject(send, wire.WireError(400, "the Content-Length header is not a number"), path, cors)
                return
            if int(length) > policy.max_body:
                await reject(send, _too_large(policy.max_body), path, cors)
                return
        if method in ("POST", "PUT", "DELETE", "PATCH") and b"json" not in headers.get(b"content-type", b""):
            scope["headers"] = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-type"]
            scope["headers"].append((b"content-type", b"application/json"))
        await self._forward(scope, receive, send, path, cors)

    async def _forward(self, scope: Scope, receive: Receive, send: Send, path: str,
                       cors: list[tuple[bytes, bytes]]) -> None:
        limit = self.policy.max_body
        received = 0
        started = False
        body_done = False

        async def counted_receive() -> Message:
            nonlocal received, body_done
            if body_done:  # later reads only wait for the client to hang up, as long as the answer takes
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.policy.body_timeout)
            except asyncio.TimeoutError:
                raise BodyTimeout(self.policy.body_timeout) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
                body_done = not message.get("more_body", False)
            return message

        async def cors_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if cors:
                    message["headers"] = [*message.get("headers", []), *cors]
            await send(message)

        try:
            await self.app(scope, counted_receive, cors_send)
        except (BodyTooLarge, BodyTimeout) as err:
            if started:
                raise
            await reject(send, err.answer(), path, cors)


def _too_large(limit: int) -> wire.WireError:
    return wire.WireError(413, f"the request body is larger than the {limit}-byte limit",
                          hint="send less text at once, or raise max_body_bytes")


def _cookie(header: bytes, name: str) -> str | None:
    """The value of cookie `name` in a `Cookie` header, if there."""
    for part in header.decode("latin-1").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


async def _preflight(send: Send, cors: list[tuple[bytes, bytes]], headers: dict[bytes, bytes]) -> None:
    allow = [
        *cors,
        (b"access-control-allow-methods", b"GET, POST, DELETE, OPTIONS"),
        (b"access-control-allow-headers", headers.get(b"access-control-request-headers", b"content-type")),
        (b"access-control-max-age", b"600"),
        (b"content-length", b"0"),
    ]
    await send({"type": "http.response.start", "status": 204, "headers": allow})
    await send({"type": "http.response.body", "body": b""})


async def reject(send: Send, err: wire.WireError, path: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    """Answer with `err` in the protocol of `path`, before any route runs."""
    payload = json.dumps(wire.body(err, path), ensure_ascii=False).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
               *[(k.lower().encode(), v.encode()) for k, v in err.headers().items()], *(extra or [])]
    await send({"type": "http.response.start", "status": err.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
