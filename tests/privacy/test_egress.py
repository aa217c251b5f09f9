"""Offline mode's guard and the egress log: what is blocked, what is allowed, what is written down.

The guard is a process-wide audit hook, so the tests that turn offline mode on run in child processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hearth import egress
from tests.conftest import HEARTH, cli_env

GUARDED = """
import json, socket, sys
import httpx
from hearth import egress
egress.install(None, offline=True, command="hearth test")
out = {}
for label, attempt in (("ip", lambda: socket.create_connection(("192.0.2.7", 8443), 2)),
                       ("name", lambda: socket.getaddrinfo("example.com", 443)),
                       ("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("8.8.8.8", 53))),
                       ("httpx", lambda: httpx.get("https://huggingface.co/api/models", timeout=2))):
    try:
        attempt()
        out[label] = "made"
    except egress.ConnectionBlockedError as err:
        out[label] = "blocked: " + str(err)
    except Exception as err:
        out[label] = f"{type(err).__name__}: {err}"
server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(1)
socket.create_connection(server.getsockname(), 2).close()
out["loopback"] = "made"
print(json.dumps(out))
"""


def test_offline_mode_blocks_addresses_names_and_datagrams_and_says_who_tried() -> None:
    done = subprocess.run([sys.executable, "-c", GUARDED], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["ip"].startswith("blocked: offline mode blocked a connection to 192.0.2.7:8443 by __main__")
    assert out["name"].startswith("blocked: offline mode blocked a lookup of 'example.com' by __main__")
    assert out["udp"].startswith("blocked: offline mode blocked a datagram to 8.8.8.8:53")
    assert "offline mode blocked a lookup of 'huggingface.co'" in out["httpx"]  # a library's own attempt
    assert "during `hearth test`" in out["ip"]
    assert out["loopback"] == "made"


def test_the_egress_log_lists_unrequested_outbound_connections_and_not_loopback(tmp_path: Path) -> None:
    script = f"""
import socket
from pathlib import Path
from hearth import egress
egress.install(Path({str(tmp_path)!r}), offline=False, command="hearth test")
try:
    socket.create_connection(("192.0.2.9", 9), 0.2)
except OSError:
    pass
server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(1)
socket.create_connection(server.getsockname(), 2).close()
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    entries = egress.read_log(tmp_path)
    assert [(e["event"], e["address"], e["port"], e["purpose"]) for e in entries] == [
        ("connect", "192.0.2.9", 9, "unrequested")]
    assert entries[0]["command"] == "hearth test" and entries[0]["time"]
    assert oct((tmp_path / egress.LOG_NAME).stat().st_mode & 0o777) == "0o600"


def test_the_log_rotates_and_damaged_lines_are_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(egress, "LOG_BYTES", 400)
    monkeypatch.setattr(egress._STATE, "log", tmp_path / egress.LOG_NAME)
    for i in range(12):
        egress._write({"event": "connect", "host": f"h{i}.example", "port": 443})
    assert (tmp_path / f"{egress.LOG_NAME}.1").exists()
    assert (tmp_path / egress.LOG_NAME).stat().st_size <= 400
    with open(tmp_path / egress.LOG_NAME, "a") as log:
        log.write("{not json\n")
    hosts = [e["host"] for e in egress.read_log(tmp_path, last=5)]
    assert hosts == ["h8.example", "h9.example", "h10.example", "h11.example"]


def test_commands_that_need_the_network_say_so_in_offline_mode(home: Path) -> None:
    env = cli_env(home)
    for args in (["--offline", "pull", "qwen2.5:0.5b"], ["--offline", "search", "qwen"],
                 ["--offline", "fit", "hf.co/someone/model-GGUF"]):
        done = subprocess.run([HEARTH, *args], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 1, done.stderr
        assert "needs the network, and offline mode is on" in done.stderr and "Traceback" not in done.stderr
    quiet = subprocess.run([HEARTH, "pull", "qwen2.5:0.5b"], env={**env, "HEARTH_OFFLINE": "1"},
                           capture_output=True, text=True, timeout=60)
    assert "offline mode is on" in quiet.stderr


def test_the_service_refuses_before_touching_the_hub(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = """
from hearth.config import Settings
from hearth.errors import OfflineError
from hearth.service import Hearth
import sys
hearth = Hearth(Settings(offline=True))
try:
    hearth.pull("qwen2.5:0.5b")
except OfflineError as err:
    print(err.message)
print("huggingface_hub" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", script], env=cli_env(home), capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.splitlines() == ["`hearth pull` needs the network, and offline mode is on", "False"]
    assert os.environ.get("HEARTH_OFFLINE") is None  # the refusal set no variable later tests would inherit


def test_privacy_check_proves_the_guard(home: Path) -> None:
    done = subprocess.run([HEARTH, "privacy", "--check", "--json"], env=cli_env(home), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["works"] is True
    assert result["attempts"]["connect 192.0.2.1:443"]["blocked"] is True
    assert result["attempts"]["loopback allowed"]["blocked"] is False
