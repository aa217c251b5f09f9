"""Zero egress, checked at the system-call level: a full round of use in offline mode (one-shot answers, a
chat, the server answering both APIs, the history) traced with `strace -f` makes no connection and sends
no datagram to anything but loopback; the same trace does show the loopback connections, so it would see
others."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import HEARTH, cli_env
from tests.server.conftest import free_port, wait_for

STRACE = shutil.which("strace")
pytestmark = pytest.mark.skipif(STRACE is None, reason="strace is not installed (Debian: apt install strace)")
CALLS = re.compile(r"\b(connect|sendto|sendmsg)\((?P<args>.*)$")
IPV4 = re.compile(r'inet_addr\("(?P<addr>[0-9.]+)"\)')
IPV6 = re.compile(r'inet_pton\(AF_INET6, "(?P<addr>[0-9a-fA-F:.]+)"')


def _strace(trace: Path) -> list[str]:
    return [str(STRACE), "-f", "-qq", "-e", "trace=connect,sendto,sendmsg", "-o", str(trace)]


def addresses(trace: Path) -> list[str]:
    """Every IPv4/IPv6 address the traced processes connected or sent to."""
    found = []
    for line in trace.read_text(encoding="utf-8", errors="replace").splitlines():
        call = CALLS.search(line)
        if call is None or "AF_INET" not in call["args"]:
            continue
        match = IPV4.search(call["args"]) or IPV6.search(call["args"])
        assert match is not None, f"an internet socket call whose address the test cannot read: {line}"
        found.append(match["addr"])
    return found


def is_loopback(address: str) -> bool:
    return address.startswith("127.") or address in ("::1", "::ffff:127.0.0.1")


def test_a_round_of_use_in_offline_mode_touches_only_loopback(tmp_path: Path) -> None:
    env = {**cli_env(tmp_path), "HEARTH_OFFLINE": "1"}
    traces = []

    def traced(name: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        trace = tmp_path / f"{name}.trace"
        traces.append(trace)
        done = subprocess.run([*_strace(trace), HEARTH, *args], env=env, input=stdin, capture_output=True,
                              text=True, timeout=180)
        assert done.returncode == 0, done.stderr
        return done

    answer = traced("run", "run", "smollm2:135m", "What is the capital of France?", "-o", "num_predict=8",
                    "-o", "temperature=0")
    assert answer.stdout.strip()
    traced("chat", "chat", "-o", "num_predict=8", stdin="Hello\n/bye\n")

    port = free_port()
    env["HEARTH_PORT"] = str(port)  # for `hearth ps`
    serve_trace = tmp_path / "serve.trace"
    traces.append(serve_trace)
    server = subprocess.Popen([*_strace(serve_trace), HEARTH, "serve", "--port", str(port), "--num-ctx", "512"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        assert wait_for(lambda: _healthy(url), timeout=90, interval=0.2), "hearth serve did not start under strace"
        openai = httpx.post(url + "/v1/chat/completions", timeout=120, json={
            "model": "smollm2:135m", "max_tokens": 8, "messages": [{"role": "user", "content": "Hi"}]})
        ollama = httpx.post(url + "/api/chat", timeout=120, json={
            "model": "smollm2:135m", "stream": False, "options": {"num_predict": 8},
            "messages": [{"role": "user", "content": "Hi"}]})
        assert openai.status_code == 200 and ollama.status_code == 200
        pull = httpx.post(url + "/api/pull", timeout=60, json={"model": "qwen2.5:0.5b", "stream": False})
        assert pull.status_code == 403 and "offline mode is on" in pull.json()["error"]
        ps = traced("ps", "ps")
        assert "smollm2:135m" in ps.stdout
    finally:
        _stop(server)
    history = traced("history", "history", "list")
    assert "France" in history.stdout

    seen = {trace.stem: addresses(trace) for trace in traces}
    assert "127.0.0.1" in seen["ps"]  # the trace does see connections: `hearth ps` asking the server
    outside = {name: [a for a in found if not is_loopback(a)] for name, found in seen.items()}
    assert outside == {name: [] for name in seen}


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _stop(tracer: subprocess.Popen[bytes]) -> None:
    """SIGTERM to `hearth serve` itself (strace's child), then strace exits with it."""
    for child in psutil.Process(tracer.pid).children():
        child.send_signal(signal.SIGTERM)
    try:
        tracer.wait(30)
    except subprocess.TimeoutExpired:
        tracer.kill()
        tracer.wait(5)
