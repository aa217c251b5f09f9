"""Fixtures for the web page: a real `hearth serve` on the bundled model, Debian's Chromium through Playwright,
and a scripted remote engine for answers the bundled model cannot be made to give (hostile Markdown, a
2,000-token answer at a known pace). The page reaches that engine through Hearth's real remote relay, the
same path any remote model takes; only the text is scripted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import HEARTH, cli_env
from tests.hub.fakehub import TOKEN, FakeHub
from tests.server.conftest import ServerProcess

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-default-apps"]
HUB_REPO = "TestOwner/SmolLM2-135M-Instruct-GGUF"
HUB_FILE = "SmolLM2-135M-Instruct-Q4_1.gguf"
SHOTS = Path(__file__).resolve().parents[2] / ".build" / "screenshots"


class ScriptedEngine:
    """An Ollama-API engine on loopback whose answer is scripted by the question.

    "ECHO: text" streams `text` back a few characters at a time; "LONG n" streams `n` tokens of Markdown at
    `pace` seconds each; "THINK: text" thinks `text` first; "TOOL: name" calls tool `name`. It records
    nothing and knows no model but "scripted".
    """

    def __init__(self, pace: float = 0.002) -> None:
        self.pace = pace
        engine = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                body = json.dumps({"models": [{"name": "scripted", "model": "scripted", "size": 0}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802
                try:
                    self._answer()
                except (BrokenPipeError, ConnectionResetError):  # the relay hung up: a stopped answer
                    pass

            def _answer(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                question = request["messages"][-1]["content"]
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                count = 0
                for piece in engine.pieces(question):
                    message = piece if isinstance(piece, dict) else {"content": piece}
                    self._chunk({"model": "scripted", "message": {"role": "assistant", **message}, "done": False})
                    count += 1
                    time.sleep(engine.pace)
                self._chunk({"model": "scripted", "message": {"role": "assistant", "content": ""}, "done": True,
                             "done_reason": "stop", "prompt_eval_count": 5, "eval_count": count,
                             "eval_duration": int(count * engine.pace * 1e9)})
                self.wfile.write(b"0\r\n\r\n")

            def _chunk(self, obj: dict[str, Any]) -> None:
                data = json.dumps(obj).encode() + b"\n"
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that hangs up mid-answer (Stop) is expected here

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    @staticmethod
    def pieces(question: str) -> list[Any]:
        """The answer to `question`, in the pieces it is streamed in (text, or a message's fields)."""
        if question.startswith("THINK:"):
            thought = question[6:].strip()
            return [{"thinking": thought[:10]}, {"thinking": thought[10:]}, "I thought ", "about it."]
        if question.startswith("TOOL:"):
            return [{"content": "", "tool_calls": [{"function": {"name": question[5:].strip(),
                                                                 "arguments": {"city": "<b>Oslo</b>"}}}]}]
        if question.startswith("ECHO:"):
            text = question[5:].strip()
            return [text[i:i + 7] for i in range(0, len(text), 7)]
        if question.startswith("LONG"):
            n = int(question.split()[1])
            words = ["Hearth ", "keeps ", "**every** ", "word ", "local", ".\n\n", "- item ", "`code` ", "and ",
                     "more "]
            return [words[i % len(words)] for i in range(n)]
        return ["I only answer ECHO: and LONG n."]

    def start(self) -> ScriptedEngine:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def web_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The HEARTH_HOME of the page's server."""
    return tmp_path_factory.mktemp("web-home")


@pytest.fixture(scope="module")
def hub(bundled_model: Path) -> Iterator[FakeHub]:
    """A stand-in Hugging Face hub serving the bundled model, for pulls from the page."""
    fake = FakeHub().start()
    fake.add_repo(HUB_REPO, {HUB_FILE: bundled_model})
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def scripted(web_home: Path) -> Iterator[ScriptedEngine]:
    """The scripted engine, registered in the page's Hearth as the remote model "scripted"."""
    engine = ScriptedEngine().start()
    subprocess.run([HEARTH, "remote", "add", "scripted", engine.url, "--model", "scripted", "--api", "ollama"],
                   env=cli_env(web_home), check=True, capture_output=True, timeout=60)
    yield engine
    engine.stop()


@pytest.fixture(scope="module")
def web(web_home: Path, hub: FakeHub, scripted: ScriptedEngine, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[ServerProcess]:
    """`hearth serve` on the bundled model, its hub the stand-in, the scripted remote registered."""
    env = {"HF_ENDPOINT": hub.url, "HF_TOKEN": TOKEN, "HF_HOME": str(tmp_path_factory.mktemp("hf-home")),
           "HF_HUB_DISABLE_TELEMETRY": "1", "HEARTH_DOWNLOAD_HOSTS": hub.cdn_url}
    server = ServerProcess(web_home, "--num-ctx", "2048", "--num-parallel", "2", env=env)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium, driven by Playwright."""
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is not installed: `make test` installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield chromium
        chromium.close()


class PageWatch:
    """What a page did: console errors, CSP violations, every URL it requested, and flags a payload may set."""

    def __init__(self, page: Any, origin: str) -> None:
        self.page = page
        self.origin = origin
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("request", lambda r: self.requests.append(r.url))
        page.add_init_script("""
            window.__violations = [];
            document.addEventListener('securitypolicyviolation',
                (e) => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));
        """)

    def foreign_requests(self) -> list[str]:
        """Requests that went anywhere but the server (data: URLs are part of the page itself)."""
        return [u for u in self.requests if not u.startswith(self.origin) and not u.startswith("data:")]

    def violations(self) -> list[str]:
        return list(self.page.evaluate("window.__violations"))


@pytest.fixture
def page(browser: Any, web: ServerProcess) -> Iterator[tuple[Any, PageWatch]]:
    """A fresh browser context on the page, ready (models listed)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    tab = context.new_page()
    watch = PageWatch(tab, web.url)
    tab.goto(web.url + "/")
    tab.wait_for_selector("body[data-ready=true]", timeout=30_000)
    yield tab, watch
    context.close()


def screenshot(tab: Any, name: str) -> Path:
    """Save a screenshot of the page's current state under .build/screenshots/."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    tab.screenshot(path=str(path))
    return path


def hearth_run(home: Path, prompt: str) -> str:
    """`hearth run` on the bundled model in `home` (recorded in its history)."""
    done = subprocess.run([HEARTH, "run", "smollm2:135m", prompt, "-o", "num_predict=8"], env=cli_env(home),
                          capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


def copy_screenshot(name: str, target: Path) -> None:
    """Keep a screenshot for the README (refreshed by every run of the browser tests)."""
    shutil.copyfile(SHOTS / f"{name}.png", target)
