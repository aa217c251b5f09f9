"""`hearth privacy`: the storage it lists, the server it finds (and whether that asks for a key), the egress log."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import HEARTH, cli_env
from tests.server.conftest import ServerProcess, free_port


def privacy(env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run([HEARTH, "privacy", "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_a_fresh_home_lists_where_things_would_be_and_no_server(tmp_path: Path) -> None:
    env = {**cli_env(tmp_path), "HEARTH_PORT": str(free_port())}
    report = privacy(env)
    stored = {s["what"]: s for s in report["storage"]}  # type: ignore[union-attr]
    assert stored["models"]["path"] == str(tmp_path / "blobs")
    assert stored["bundled model"]["bytes"] > 90_000_000 and stored["bundled model"]["exists"]
    assert stored["egress log"]["exists"] is False
    assert report["offline"] is False and report["egress"] == []
    assert report["server"]["running"] is False  # type: ignore[index]
    text = subprocess.run([HEARTH, "privacy"], env=env, capture_output=True, text=True, timeout=60).stdout
    assert "not running" in text and "remote engines" in text and "telemetry" in text


def test_a_running_server_with_a_key_is_found_said_to_require_it_and_to_be_offline(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, "--offline", env={"HEARTH_API_KEY": "secret-key-123"})
    try:
        env = {**cli_env(tmp_path), "HEARTH_PORT": str(server.port), "HEARTH_API_KEY": "secret-key-123"}
        status = privacy(env)["server"]
        assert status == {**status, "running": True, "key_required": True, "key_configured": True,
                          "loopback_only": True, "offline": True}  # type: ignore[dict-item]
        assert "secret-key-123" not in json.dumps(privacy(env))
    finally:
        server.stop()


def test_a_search_shows_up_in_the_egress_log_with_its_purpose(tmp_path: Path) -> None:
    closed = free_port()  # nobody answers: the attempt is still an attempt
    env = {**cli_env(tmp_path), "HF_ENDPOINT": f"http://127.0.0.1:{closed}", "HEARTH_PORT": str(free_port())}
    done = subprocess.run([HEARTH, "search", "qwen"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    entries = privacy(env)["egress"]
    assert isinstance(entries, list) and entries
    assert all(e["purpose"] == "search qwen" and e["command"] == "hearth search" for e in entries)
    assert any(e["event"] == "connect" and e["port"] == closed for e in entries)
    offline = privacy({**env, "HEARTH_OFFLINE": "1"})
    assert offline["offline"] is True


def test_paired_devices_are_listed(tmp_path: Path) -> None:
    from hearth.service.devices import Devices

    env = {**cli_env(tmp_path), "HEARTH_PORT": str(free_port())}
    assert privacy(env)["paired_devices"] == []
    devices = Devices(tmp_path)
    device, _ = devices.redeem(devices.new_code().code, "Pixel Browser")
    report = privacy(env)
    (line,) = report["paired_devices"]  # type: ignore[misc]
    assert line.startswith(f"{device.id} Pixel Browser (paired ")
    stored = {s["what"]: s for s in report["storage"]}  # type: ignore[union-attr]
    assert stored["paired devices"]["path"] == str(tmp_path / "devices.json") and stored["paired devices"]["exists"]
