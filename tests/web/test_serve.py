"""`hearth serve` tells where the page is, and `--open` opens it in the user's browser."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.server.conftest import ServerProcess, wait_for

pytestmark = pytest.mark.slow


def test_serve_prints_the_page_and_open_starts_a_browser_on_it(tmp_path: Path) -> None:
    opened = tmp_path / "opened.txt"
    browser = f"sh -c 'echo %s >> {opened}'"  # what webbrowser runs for $BROWSER
    (tmp_path / "home").mkdir()
    server = ServerProcess(tmp_path / "home", "--open", env={"BROWSER": browser})
    try:
        assert wait_for(lambda: opened.exists() and opened.read_text().strip() != "", timeout=10)
        assert opened.read_text().split() == [f"{server.url}/"]
        assert f"Chat in your browser: {server.url}/" in server.log.read_text()
    finally:
        server.stop()
