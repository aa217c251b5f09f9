"""Fixtures for the server tests: the app in-process over a fake service, and real `hearth serve` processes."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from hearth.config import Settings
from hearth.server import create_app
from tests.conftest import HEARTH, cli_env
from tests.server.fakes import FakeHearth

LOCAL = "http://127.0.0.1:11435"
MODEL = "smollm2:135m"


@pytest.fixture
def fake() -> FakeHearth:
    """A fake service with one model, `fake`."""
    return FakeHearth()


@pytest.fixture
def make_client() -> Iterator[Callable[..., TestClient]]:
    """Build an in-process client for the app over a fake service with the given settings."""
    clients: list[TestClient] = []

    def make(service: FakeHearth | None = None, **settings: Any) -> TestClient:
        service = service or FakeHearth()
        client = TestClient(create_app(service, Settings(**settings)), base_url=LOCAL, raise_server_exceptions=False,
                            client=("127.0.0.1", 50000))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(fake: FakeHearth, make_client: Callable[..., TestClient]) -> TestClient:
    """The app over `fake`, default settings."""
    return make_client(fake)


def free_port() -> int:
    """A TCP port nobody listens on (right now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """A real `hearth serve` in a subprocess, on a free port, with its own HEARTH_HOME."""

    def __init__(self, home: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home / f"serve-{self.port}.log"
        full_env = {**cli_env(home), **(env or {})}
        with open(self.log, "wb") as out:
            # One decoding thread: llama.cpp's threads spin at barriers, which turns a busy shared machine's
            # CPU contention into multi-second decoding steps; one thread keeps the timings meaningful.
            self.proc = subprocess.Popen([HEARTH, "serve", "--port", str(self.port), "--num-threads", "1", *args],
                                         env=full_env,
                                         stdout=out, stderr=subprocess.STDOUT)
        self._wait_ready(headers={"Authorization": f"Bearer {full_env['HEARTH_API_KEY']}"}
                         if full_env.get("HEARTH_API_KEY") else {})

    def _wait_ready(self, headers: dict[str, str]) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hearth serve exited: {self.log.read_text()}")
            try:
                if httpx.get(self.url + "/health", timeout=1, headers=headers).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("hearth serve did not start in 60 s")

    def healthy(self) -> bool:
        """The server answers /health."""
        try:
            return httpx.get(self.url + "/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def ps(self) -> list[dict[str, Any]]:
        """The loaded models (GET /api/ps)."""
        return list(httpx.get(self.url + "/api/ps", timeout=10).json()["models"])

    def stop(self) -> int:
        """SIGTERM, then wait; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


@pytest.fixture(scope="session")
def server_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A HEARTH_HOME shared by the live servers (the bundled model registered once)."""
    return tmp_path_factory.mktemp("server-home")


@pytest.fixture(scope="session")
def live(server_home: Path) -> Iterator[ServerProcess]:
    """One real server for the whole session: 4 slots per model, small context."""
    server = ServerProcess(server_home, "--num-ctx", "1024", "--num-parallel", "4")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def narrow(server_home: Path) -> Iterator[ServerProcess]:
    """A real server with one slot and a queue of one: the third concurrent request gets 503."""
    server = ServerProcess(server_home, "--num-ctx", "1024", "--num-parallel", "1", "--max-queue", "1")
    yield server
    server.stop()


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.05) -> bool:
    """Poll `predicate` until it is true or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


__all__ = ["LOCAL", "MODEL", "ServerProcess", "free_port", "wait_for"]
