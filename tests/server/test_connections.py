"""Slow and idle clients on a live server: cut off after `request_timeout`, while others are served."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import ServerProcess

TIMEOUT = 2.0


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    home: Path = tmp_path_factory.mktemp("connections-home")
    server = ServerProcess(home, "--request-timeout", str(TIMEOUT), "--max-connections", "8")
    yield server
    server.stop()


def _connect(server: ServerProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=15)
    return sock


def _closed_after(sock: socket.socket, drip: bytes = b"") -> tuple[float, bytes]:
    """Seconds until the server closes `sock` (sending `drip` a byte at a time meanwhile), and what it sent."""
    started = time.monotonic()
    sock.settimeout(0.25)
    got = b""
    for byte in [drip[i:i + 1] for i in range(len(drip))] or [b""] * 60:
        try:
            if byte:
                sock.sendall(byte)
            chunk = sock.recv(4096)
            if not chunk:
                return time.monotonic() - started, got
            got += chunk
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - started, got
    return time.monotonic() - started, got


def test_trickled_headers_are_cut_off_while_others_are_served(strict: ServerProcess) -> None:
    sock = _connect(strict)
    other_started = time.monotonic()
    assert httpx.get(strict.url + "/health", timeout=5).status_code == 200
    assert time.monotonic() - other_started < 1.0
    took, _ = _closed_after(sock, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200)
    assert TIMEOUT * 0.8 < took < TIMEOUT + 3, took
    sock.close()


def test_an_idle_connection_is_closed(strict: ServerProcess) -> None:
    sock = _connect(strict)
    took, got = _closed_after(sock)
    assert got == b"" and took < TIMEOUT + 3
    sock.close()


def test_a_body_that_stops_arriving_gets_408(strict: ServerProcess) -> None:
    sock = _connect(strict)
    sock.sendall(b"POST /api/show HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 200\r\n\r\n{\"model\": ")
    took, got = _closed_after(sock)
    assert got.startswith(b"HTTP/1.1 408"), got[:80]
    assert b"did not arrive" in got and b"connection: close" in got.lower() and took < TIMEOUT + 3
    sock.close()
    assert httpx.get(strict.url + "/health", timeout=5).status_code == 200


def test_connections_beyond_the_limit_get_503(strict: ServerProcess) -> None:
    held = []
    for _ in range(7):  # seven requests in progress (each waiting for the rest of its body)
        sock = _connect(strict)
        sock.sendall(b"POST /api/show HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 50\r\n\r\n{")
        held.append(sock)
        time.sleep(0.05)
    try:
        response = httpx.get(strict.url + "/health", timeout=5)
        assert response.status_code == 503
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.5)
    assert httpx.get(strict.url + "/health", timeout=5).status_code == 200
