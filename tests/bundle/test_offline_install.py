"""The whole trip: export with the real CLI, then on "another computer" (a fresh HOME, a network namespace with
nothing but loopback) `sh DIR/install` makes a venv from the wheels alone, and the model answers."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hearth.bundle import read_index
from hearth.bundle.index import portable
from hearth.service import Hearth
from tests.conftest import HEARTH, cli_env

QUESTION = "What is the capital of France? Answer in one word."
NO_NETWORK = ("import socket\ntry:\n    socket.create_connection(('1.1.1.1', 443), timeout=3)\n"
              "except OSError as err:\n    print('unreachable:', err)\nelse:\n    print('CONNECTED')\n")


def _netns_problem() -> str | None:
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed, so the install cannot be cut off from the network"
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        return f"`unshare -n` is not allowed here ({probe.stderr.strip()}): it needs root or user namespaces"
    return None


def offline(command: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run `command` with sh in a new network namespace with only loopback (brought up)."""
    script = ("ip link set lo up 2>/dev/null || true\n" if shutil.which("ip") else "") + command
    return subprocess.run(["unshare", "-n", "sh", "-c", script], capture_output=True, text=True, env=env,
                          timeout=timeout, check=False)


@pytest.mark.slow
def test_a_bundle_installs_offline_and_the_model_answers(source: Hearth, tmp_path: Path) -> None:
    problem = _netns_problem()
    if problem:
        pytest.skip(problem)
    stick = tmp_path / "stick" / "hearth"
    started = time.monotonic()
    export = subprocess.run([HEARTH, "bundle", "export", str(stick), "-m", "smollm2:135m", "-m", "terse"],
                            capture_output=True, text=True, env=cli_env(source.store.home), timeout=600, check=False)
    exported = time.monotonic() - started
    assert export.returncode == 0, export.stderr
    assert f"sh {stick / 'install'}" in export.stdout
    index = read_index(stick)
    for rel in index.files:
        portable(rel)
    assert not any(p.is_symlink() for p in stick.rglob("*"))

    other = tmp_path / "other-computer"
    venv = other / "venv"
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(other), "HEARTH_HOME": str(other / "hearth"),
           "HEARTH_TUNE": "0", "LANG": "C.UTF-8", "PYTHON": getattr(sys, "_base_executable", sys.executable)}
    probe = offline(f"{env['PYTHON']} -c \"{NO_NETWORK}\"", env)
    assert "unreachable" in probe.stdout, probe.stdout + probe.stderr
    started = time.monotonic()
    install = offline(f"sh {stick}/install {venv}", env)
    installed = time.monotonic() - started
    assert install.returncode == 0, install.stdout + install.stderr
    assert "Checked" in install.stdout and "imported 'terse:latest'" in install.stdout
    assert (venv / "bin" / "hearth").is_file()

    answer = offline(f"{venv}/bin/hearth run smollm2:135m '{QUESTION}' -o temperature=0", env)
    assert answer.returncode == 0, answer.stderr
    assert "Paris" in answer.stdout
    listed = offline(f"{venv}/bin/hearth list", env)
    assert "smollm2:135m" in listed.stdout and "terse:latest" in listed.stdout
    print(f"\nbundle: {index.size / 1e6:.0f} MB in {len(index.files)} files; export {exported:.1f} s, "
          f"install {installed:.1f} s")
