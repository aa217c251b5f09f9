"""Pairing a phone for real: `hearth serve --lan ADDRESS`, a browser off loopback, the QR code's link."""

from __future__ import annotations

import re
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import HEARTH, cli_env
from tests.server.conftest import ServerProcess, wait_for

pytestmark = pytest.mark.slow
DUMMY = "hearthtest0"
DUMMY_ADDRESS = "10.254.254.1"


def _own_lan_address() -> str | None:
    for addrs in psutil.net_if_addrs().values():
        for addr in addrs:
            if addr.family == socket.AF_INET and not addr.address.startswith(("127.", "169.254.")):
                return str(addr.address)
    return None


@pytest.fixture(scope="module")
def lan_address() -> Iterator[str]:
    """An address of this machine that is not loopback: its own, or one on a dummy interface made here."""
    found = _own_lan_address()
    if found is not None:
        yield found
        return
    made = subprocess.run(f"ip link add {DUMMY} type dummy && ip addr add {DUMMY_ADDRESS}/32 dev {DUMMY} && "
                          f"ip link set {DUMMY} up", shell=True, capture_output=True, text=True)
    if made.returncode != 0:
        pytest.fail(f"no address off loopback to test pairing on, and none could be made: {made.stderr}")
    yield DUMMY_ADDRESS
    subprocess.run(["ip", "link", "del", DUMMY], capture_output=True)


@pytest.fixture(scope="module")
def lan_server(tmp_path_factory: pytest.TempPathFactory, lan_address: str) -> Iterator[tuple[ServerProcess, Path]]:
    home = tmp_path_factory.mktemp("lan-home")
    server = ServerProcess(home, "--lan", lan_address, "--num-ctx", "1024")
    yield server, home
    server.stop()


def pairing_link(server: ServerProcess) -> str:
    pattern = r"open (http://\S+/\?pair=[A-Z0-9]+)"
    assert wait_for(lambda: bool(re.findall(pattern, server.log.read_text())), timeout=10), server.log.read_text()
    return str(re.findall(pattern, server.log.read_text())[-1])


def test_a_phone_pairs_with_the_printed_link_once_and_loses_access_when_revoked(
        browser: Any, lan_server: tuple[ServerProcess, Path], lan_address: str) -> None:
    server, home = lan_server
    link = pairing_link(server)
    origin = f"http://{lan_address}:{server.port}"
    assert link.startswith(origin + "/?pair=")
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    tab = phone.new_page()
    tab.goto(origin + "/")  # not paired yet: the page explains how to pair
    tab.wait_for_selector("#pair-dialog[open]")
    assert "hearth devices pair" in tab.inner_text("#pair-dialog")
    assert tab.evaluate("async () => (await fetch('/api/tags')).status") == 401

    tab.goto(link)  # what scanning the QR code does
    tab.wait_for_selector("body[data-ready=true]", timeout=30_000)
    assert tab.evaluate("location.search") == ""  # the used code does not linger in the address bar
    cookie = next(c for c in phone.cookies() if c["name"] == "hearth_device")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    tab.select_option("#model", "smollm2:135m")
    tab.fill("#input", "Say hello.")
    tab.keyboard.press("Enter")
    tab.wait_for_selector(".msg.assistant:not(.streaming) .meta .stats", timeout=120_000)

    other = browser.new_context()  # the same link a second time
    second = other.new_page()
    second.goto(link)
    second.wait_for_selector("#pair-dialog[open]")
    second.wait_for_function("() => document.getElementById('pair-error').textContent.length > 0")
    assert "already used or expired" in second.inner_text("#pair-error")
    other.close()

    listed = subprocess.run([HEARTH, "devices"], env=cli_env(home), capture_output=True, text=True, check=True)
    device_id = listed.stdout.splitlines()[1].split()[0]
    revoked = subprocess.run([HEARTH, "devices", "revoke", device_id], env=cli_env(home), capture_output=True,
                             text=True, check=True)
    assert f"revoked {device_id}" in revoked.stdout
    assert tab.evaluate("async () => (await fetch('/api/tags')).status") == 401
    phone.close()


def test_a_new_code_from_the_cli_pairs_with_the_running_server(
        browser: Any, lan_server: tuple[ServerProcess, Path], lan_address: str) -> None:
    server, home = lan_server
    origin = f"http://{lan_address}:{server.port}"
    made = subprocess.run([HEARTH, "devices", "pair", "--url", origin], env=cli_env(home), capture_output=True,
                          text=True, check=True)
    code = re.search(r"type the code (\w{5})-(\w{5})", made.stderr)
    assert code is not None, made.stderr
    laptop = browser.new_context()
    tab = laptop.new_page()
    tab.goto(origin + "/")
    tab.wait_for_selector("#pair-dialog[open]")
    tab.fill("#pair-code", f"{code[1]}-{code[2]}")
    tab.click("#pair-submit")
    tab.wait_for_selector("body[data-ready=true]", timeout=30_000)
    assert tab.locator("#model option").count() >= 1
    laptop.close()
