"""Where hub requests may go: redirects checked hop by hop, the token kept to the hub, a dead hub told at once.

The hub answers a file's `/resolve/` URL with a redirect to its CDN (`cas-bridge.xethub.hf.co`,
`cdn-lfs.hf.co`, ...), and `huggingface_hub`'s HTTP client follows redirects by itself. Hearth gives that
client (`set_client_factory`) two hooks that run on every hop:

- a response hook refuses a redirect unless its target is the hub's own origin (`HF_ENDPOINT`, so a local
  mirror works), an origin written out in `download_hosts` (`http://127.0.0.1:9000`), or an https URL whose
  host matches a `download_hosts` pattern and resolves to public addresses only (never loopback,
  link-local, private, multicast or reserved ones, so a hostile hub or CDN cannot aim Hearth at the
  machine's own services or the local network). A refusal is `UnsafeRedirectError`, naming the host.
- a request hook drops the `Authorization` header from any request to another origin than the hub's, so
  the token never leaves the hub whatever a redirect says (httpx drops it too; this does not rely on it).

Its transport also turns "connection refused" and "no such host" into an error `huggingface_hub` does not
retry: its back-off (1 + 2 + 4 + 8 + 8 s) made `hearth search` wait 23 s to say the hub is unreachable. A
timeout or a connection dropped midway is still retried (and a download resumes).

`download_hosts` comes from the caller (`allowing(...)`, as `Hearth` does with its settings), else from
`load_settings()`: the environment (`HEARTH_DOWNLOAD_HOSTS`) and the config file.
"""

from __future__ import annotations

import contextvars
import ipaddress
import os
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from hearth.errors import UnsafeRedirectError

DEFAULT_ENDPOINT = "https://huggingface.co"
REDIRECT_HINT = ("if you trust that host, add it to download_hosts (HEARTH_DOWNLOAD_HOSTS); "
                 "otherwise check HF_ENDPOINT")
_hosts: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar("hearth_download_hosts",
                                                                                  default=None)


def endpoint() -> str:
    """The hub's base URL: `$HF_ENDPOINT`, else https://huggingface.co."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


class HubUnreachable(ConnectionError):
    """Nothing answers at the hub's address (refused, or no such host): not worth retrying."""


@contextmanager
def allowing(hosts: Sequence[str] | None) -> Iterator[None]:
    """Check redirects against `hosts` (None: the configured `download_hosts`) inside this block."""
    token = _hosts.set(None if hosts is None else tuple(hosts))
    try:
        yield
    finally:
        _hosts.reset(token)


def allowed_hosts() -> tuple[str, ...]:
    """The `download_hosts` in force: the block's (`allowing`), else the configured ones."""
    hosts = _hosts.get()
    if hosts is not None:
        return hosts
    from hearth.config import load_settings

    return load_settings().download_hosts


def check_redirect(target: str, endpoint: str, hosts: Sequence[str]) -> None:
    """UnsafeRedirectError unless a redirect to `target` may be followed (see the module docstring)."""
    url = urlsplit(target)
    if _origin(target) == _origin(endpoint):
        return
    if _origin(target) in {_origin(h) for h in hosts if "://" in h}:
        return
    host = (url.hostname or "").lower()
    shown = f"{url.scheme}://{url.netloc}"
    if url.scheme != "https":
        raise UnsafeRedirectError(f"Hearth refused to follow the hub's redirect to {shown}: only https "
                                  "downloads are followed beyond the hub itself", hint=REDIRECT_HINT)
    if not any(_matches(host, pattern) for pattern in hosts if "://" not in pattern):
        raise UnsafeRedirectError(f"Hearth refused to follow the hub's redirect to {shown}: {host} is not one "
                                  "of the download hosts it trusts", hint=REDIRECT_HINT)
    for address in _addresses(host, url.port or 443):
        if not address.is_global:
            raise UnsafeRedirectError(f"Hearth refused to follow the hub's redirect to {shown}: {host} is a "
                                      f"{_kind(address)} address ({address})", hint=REDIRECT_HINT)


def client_factory() -> Any:
    """The HTTP client `huggingface_hub` uses, with Hearth's redirect and token hooks on every hop."""
    import httpx2
    from huggingface_hub.utils._http import hf_request_event_hook

    return httpx2.Client(event_hooks={"request": [hf_request_event_hook, _drop_foreign_token],
                                      "response": [_check_response]},
                         follow_redirects=True, timeout=None, transport=_FastFailTransport())


def _check_response(response: Any) -> None:
    if not response.has_redirect_location:
        return
    target = str(response.request.url.join(response.headers["Location"]))
    check_redirect(target, endpoint(), allowed_hosts())


def _drop_foreign_token(request: Any) -> None:
    if _origin(str(request.url)) != _origin(endpoint()):
        request.headers.pop("Authorization", None)


def _transport_base() -> type:
    import httpx2

    return httpx2.HTTPTransport


class _FastFailTransport(_transport_base()):  # type: ignore[misc]
    """The default transport, except that a refused connection or an unknown host is not retried."""

    def handle_request(self, request: Any) -> Any:
        import httpx2

        try:
            return super().handle_request(request)
        except httpx2.ConnectError as err:
            if _cause(err, (ConnectionRefusedError, socket.gaierror)):
                raise HubUnreachable(_first_line(err)) from None
            raise


def _cause(err: BaseException, kinds: tuple[type[BaseException], ...]) -> bool:
    seen: BaseException | None = err
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, kinds):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else type(err).__name__


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"https": 443, "http": 80}.get(scheme)
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port


def _matches(host: str, pattern: str) -> bool:
    pattern = pattern.strip().lower().rstrip(".")
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and host != pattern[2:]
    return host == pattern


def _addresses(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except OSError:
        return []  # the connection itself will fail, and say so
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def _kind(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_private:
        return "private"
    return "non-public"
