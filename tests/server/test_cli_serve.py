"""`hearth serve`, `hearth ps` and `hearth stop` through the real command."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import HEARTH, cli_env
from tests.server.conftest import MODEL, ServerProcess, free_port, wait_for


def _run(home: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([HEARTH, *args], env={**cli_env(home), **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize(("args", "env"), [
    (["serve", "--host", "0.0.0.0"], {}),
    (["serve", "--host", "0.0.0.0:18999"], {}),
    (["serve"], {"HEARTH_HOST": "0.0.0.0:18999"}),
    (["serve", "--host", "::"], {}),
])
def test_non_loopback_bind_without_a_key_refuses_to_start(server_home: Path, args: list[str],
                                                          env: dict[str, str]) -> None:
    result = _run(server_home, *args, env=env)
    assert result.returncode == 1
    assert "without an API key" in result.stderr and "Hint:" in result.stderr
    assert "Traceback" not in result.stderr


def test_port_in_use_is_a_clear_error(server_home: Path, live: ServerProcess) -> None:
    result = _run(server_home, "serve", "--port", str(live.port))
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{live.port}" in result.stderr and "Traceback" not in result.stderr


def test_keyed_server_on_all_interfaces_requires_the_key(server_home: Path) -> None:
    server = ServerProcess(server_home, "--host", "0.0.0.0", env={"HEARTH_API_KEY": "k-123"})
    try:
        assert httpx.get(server.url + "/api/tags").status_code == 401
        assert httpx.get(server.url + "/api/tags", headers={"Authorization": "Bearer k-123"}).status_code == 200
        foreign = httpx.get(server.url + "/api/tags", headers={"Authorization": "Bearer k-123", "Host": "evil.example"})
        assert foreign.status_code == 403
        env = {"HEARTH_PORT": str(server.port), "HEARTH_API_KEY": "k-123"}
        assert _run(server_home, "ps", env=env).returncode == 0
        refused = _run(server_home, "ps", env={**env, "HEARTH_API_KEY": "wrong"})
        assert refused.returncode == 1 and "401" in refused.stderr
    finally:
        assert server.stop() == 0


def test_ps_without_a_server_says_so(server_home: Path) -> None:
    result = _run(server_home, "ps", env={"HEARTH_PORT": str(free_port())})
    assert result.returncode == 1
    assert "no Hearth server is running" in result.stderr and "hearth serve" in result.stderr


def test_ps_and_stop(server_home: Path, live: ServerProcess) -> None:
    env = {"HEARTH_PORT": str(live.port)}
    httpx.post(live.url + "/api/generate", json={"model": MODEL, "prompt": "hi", "stream": False,
                                                 "options": {"num_predict": 1}}, timeout=60)
    table = _run(server_home, "ps", env=env)
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()[:2]
    assert header.split() == ["NAME", "ID", "SIZE", "PROCESSOR", "SLOTS", "CACHED", "UNTIL"]
    assert row.startswith(MODEL) and "MB" in row and "100% CPU" in row and "from now" in row
    pid = next(m["pid"] for m in live.ps())
    stopped = _run(server_home, "stop", MODEL, env=env)
    assert stopped.returncode == 0 and f"stopped '{MODEL}'" in stopped.stdout
    assert live.ps() == []
    assert wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    again = _run(server_home, "stop", MODEL, env=env)
    assert again.returncode == 1 and "not loaded" in again.stderr


def test_sigterm_stops_the_server_and_its_workers(server_home: Path) -> None:
    server = ServerProcess(server_home, "--num-ctx", "512", "--num-parallel", "1")
    cm = httpx.stream("POST", server.url + "/api/generate", json={
        "model": MODEL, "prompt": "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,", "raw": True,
        "options": {"num_predict": 5000, "repeat_penalty": 1.0, "temperature": 0}}, timeout=30)
    response = cm.__enter__()
    lines = response.iter_lines()
    next(lines)
    pid = server.ps()[0]["pid"]
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    rest = list(lines)
    assert server.proc.wait(15) == 0
    assert time.monotonic() - started < 10
    assert rest and "the server is shutting down" in rest[-1]  # an in-band error line, not a cut connection
    cm.__exit__(None, None, None)
    assert wait_for(lambda: not psutil.pid_exists(pid), timeout=5)
