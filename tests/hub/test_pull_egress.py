"""The egress log records a pull from the hub stand-in: host, time, purpose and the bytes received."""

from __future__ import annotations

from pathlib import Path

from hearth import egress
from hearth.config import Settings
from hearth.service import Hearth
from tests.hub.conftest import REPO
from tests.hub.fakehub import FakeHub


def test_a_pull_is_logged_with_host_purpose_and_bytes(smol_repo: FakeHub, home: Path) -> None:
    hearth = Hearth(Settings().merged({"num_parallel": 1, "download_hosts": smol_repo.cdn_url}))
    try:
        manifest = hearth.pull(f"hf.co/{REPO}:Q4_1")
    finally:
        hearth.close()
    entries = egress.read_log(home, last=0)
    connects = [e for e in entries if e["event"] == "connect"]
    assert connects and all(e["purpose"] == f"pull hf.co/{REPO}:Q4_1" for e in connects)
    assert {e["host"] for e in connects} == {"127.0.0.1"} and all(e["time"].startswith("20") for e in connects)
    done = [e for e in entries if e["event"] == "done"]
    assert done[-1]["bytes_received"] == manifest.size and done[-1]["connections"] == len(connects)
    again = Hearth(Settings().merged({"num_parallel": 1, "download_hosts": smol_repo.cdn_url}))
    try:
        again.pull(f"hf.co/{REPO}:Q4_1")  # already here: one listing request, no bytes of weights
    finally:
        again.close()
    last = [e for e in egress.read_log(home, last=0) if e["event"] == "done"][-1]
    assert last["bytes_received"] == 0 and last["connections"] >= 1
