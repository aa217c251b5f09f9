"""RPC workers: the bundled model spread over two `hearth rpc-worker` processes on loopback.

Same greedy answer as a local load; an unreachable worker is refused before anything loads; a worker killed
mid-answer ends that answer with an in-band error while the server stays up and answers again.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from hearth.config import Settings
from hearth.engine import WorkerClient, WorkerConfig
from hearth.engine.rpc import parse_endpoint, split_layers
from hearth.errors import InvalidOptionError, OfflineError, RpcWorkerError
from hearth.options import parse_options
from hearth.service import Hearth, rpc_worker
from hearth.service.rpc import RpcWorkers
from hearth.store import ModelStore
from hearth.types import Done, TextChunk
from tests.conftest import HEARTH, cli_env
from tests.server.conftest import ServerProcess, free_port

MODEL = "smollm2:135m"
PROMPT = "Write a short story about a lighthouse keeper."
GREEDY = {"temperature": 0, "num_predict": 16, "seed": 1}


class RpcWorkerProcess:
    """A real `hearth rpc-worker` on a free loopback port."""

    def __init__(self, home: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.endpoint = f"127.0.0.1:{self.port}"
        self.log = home / f"rpc-worker-{self.port}.log"
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([HEARTH, "rpc-worker", "--port", str(self.port), "--threads", "1"],
                                         env=cli_env(home), stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # listening once a connection is taken (and let go at once)
            if self.proc.poll() is not None:
                raise RuntimeError(f"hearth rpc-worker exited: {self.log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("hearth rpc-worker did not listen within 30 s")

    def rss(self) -> int:
        """Resident memory of the worker process."""
        return int(psutil.Process(self.proc.pid).memory_info().rss)

    def kill(self) -> None:
        """SIGKILL: the machine went away."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM (SIGINT may be ignored: a shell's background jobs inherit that)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(scope="module")
def rpc_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rpc-home")


@pytest.fixture(scope="module")
def workers(rpc_home: Path) -> Iterator[list[RpcWorkerProcess]]:
    """Two RPC workers for the module."""
    started = [RpcWorkerProcess(rpc_home), RpcWorkerProcess(rpc_home)]
    yield started
    for worker in started:
        worker.stop()


def service(home: Path, **settings: object) -> Hearth:
    os.environ["HEARTH_HOME"] = str(home)
    return Hearth(Settings(num_parallel=1, num_ctx=512, num_threads=1, prompt_cache_bytes=0, **settings),
                  store=ModelStore(home))


def answer(hearth: Hearth, options: dict[str, object] = GREEDY) -> tuple[str, Done]:
    parts, done = [], None
    for event in hearth.generate(MODEL, PROMPT, parse_options(options)):
        if isinstance(event, TextChunk):
            parts.append(event.text)
        elif isinstance(event, Done):
            done = event
    assert done is not None
    return "".join(parts), done


# -- without a model ---------------------------------------------------------------------------------------
def test_endpoints_must_be_host_and_port() -> None:
    assert parse_endpoint("192.168.1.20:50052") == ("192.168.1.20", 50052)
    assert parse_endpoint("gpu-box.lan:7000") == ("gpu-box.lan", 7000)
    for bad in ("192.168.1.20", ":50052", "host:0", "host:port", "[::1]:50052"):
        with pytest.raises(InvalidOptionError):
            parse_endpoint(bad)


def test_layers_are_shared_in_proportion_to_memory() -> None:
    assert split_layers(30, 8 << 30, []) == (0, ())
    layers, split = split_layers(29, 8 << 30, [4 << 30, 12 << 30])  # 30 layers, a third of the memory here
    assert layers == 20 and split == pytest.approx((1 / 4, 3 / 4))
    assert split_layers(30, 0, [1 << 30])[0] == 31  # nothing here: every layer on the worker


def test_a_worker_listens_beyond_loopback_only_when_told_it_has_no_authentication(
        monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    assert rpc_worker("127.0.0.1", port).warning is None
    with pytest.raises(InvalidOptionError, match="no password") as refused:
        rpc_worker("0.0.0.0", port)
    assert "--i-understand-no-auth" in (refused.value.hint or "")
    exposed = rpc_worker("0.0.0.0", port, no_auth_understood=True)
    assert "no authentication" in (exposed.warning or "") and "ufw" in (exposed.warning or "")
    with pytest.raises(InvalidOptionError, match="IPv4"):
        rpc_worker("localhost", port)
    from hearth import egress

    monkeypatch.setattr(egress, "is_offline", lambda: True)
    with pytest.raises(OfflineError):
        rpc_worker("0.0.0.0", port, no_auth_understood=True)


def test_a_taken_port_is_refused_before_anything_is_printed() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(RpcWorkerError, match="cannot listen on 127.0.0.1:.*in use"):
            rpc_worker("127.0.0.1", taken.getsockname()[1])


def test_the_cli_refuses_to_listen_beyond_loopback_without_the_flag(rpc_home: Path) -> None:
    done = subprocess.run([HEARTH, "rpc-worker", "--host", "0.0.0.0", "--port", str(free_port())],
                          env=cli_env(rpc_home), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "no password" in done.stderr and "--i-understand-no-auth" in done.stderr


def test_ctrl_c_stops_a_worker(rpc_home: Path) -> None:
    port = free_port()
    worker = subprocess.Popen([HEARTH, "rpc-worker", "--port", str(port)], env=cli_env(rpc_home),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        worker.send_signal(signal.SIGINT)  # while llama.cpp's server waits in accept()
        out, _ = worker.communicate(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 130
    assert f"RPC worker listening on 127.0.0.1:{port}" in out and "RPC worker stopped." in out


def test_unreachable_workers_count_nothing_in_the_budget_and_are_asked_again_later(
        caplog: pytest.LogCaptureFixture) -> None:
    workers = RpcWorkers((f"127.0.0.1:{free_port()}",))
    assert workers.budget(busy=False) == 0 and workers.budget(busy=False) == 0
    assert len([r for r in caplog.records if "do not count" in r.getMessage()]) == 1  # said once, not per read


# -- the bundled model across two workers -------------------------------------------------------------------
def test_spread_over_two_workers_gives_the_local_answer(rpc_home: Path, workers: list[RpcWorkerProcess]) -> None:
    local = service(rpc_home)
    try:
        expected, local_done = answer(local)
    finally:
        local.close()
    before = [w.rss() for w in workers]
    spread = service(rpc_home, rpc_workers=tuple(w.endpoint for w in workers))
    try:
        text, done = answer(spread)
        (loaded,) = spread.scheduler.loaded()
        config = loaded.client.config
        grown = [w.rss() - b for w, b in zip(workers, before, strict=True)]
    finally:
        spread.close()
    assert (text, done.reason) == (expected, local_done.reason) and done.stats.completion_tokens == 16
    assert config.rpc_servers == tuple(w.endpoint for w in workers)
    assert 0 < config.rpc_layers < 31 and len(config.rpc_split) == 2  # some layers here, the rest on the workers
    assert all(g > 5 << 20 for g in grown), grown  # each worker holds its share of the weights


def test_an_unreachable_worker_is_refused_before_loading(rpc_home: Path, workers: list[RpcWorkerProcess]) -> None:
    nobody = f"127.0.0.1:{free_port()}"
    started: list[WorkerConfig] = []

    def counting(config: WorkerConfig) -> WorkerClient:
        started.append(config)
        return WorkerClient(config)

    os.environ["HEARTH_HOME"] = str(rpc_home)
    hearth = Hearth(Settings(num_parallel=1, num_ctx=512, rpc_workers=(workers[0].endpoint, nobody)),
                    store=ModelStore(rpc_home), client_factory=counting)
    try:
        with pytest.raises(RpcWorkerError, match=f"cannot reach the RPC worker {nobody}") as refused:
            hearth.generate(MODEL, PROMPT, parse_options(GREEDY))
    finally:
        hearth.close()
    assert "hearth rpc-worker" in (refused.value.hint or "")
    assert started == []  # no model worker was started


def test_a_worker_lost_mid_answer_ends_that_answer_and_the_server_stays_up(rpc_home: Path) -> None:
    first, second = RpcWorkerProcess(rpc_home), RpcWorkerProcess(rpc_home)
    endpoints = f"{first.endpoint},{second.endpoint}"
    server = ServerProcess(rpc_home, "--num-ctx", "512", "--num-parallel", "1", "--rpc-workers", endpoints)
    try:
        body = {"model": MODEL, "prompt": PROMPT, "options": {"temperature": 0, "num_predict": 2000}}
        lines = []
        with httpx.stream("POST", server.url + "/api/generate", json=body, timeout=120) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                lines.append(json.loads(line))
                if len(lines) == 3:
                    second.kill()  # the machine went away mid-answer
        # Ollama's in-band error line: the answer ends, it is not cut off
        assert lines[-1] == {"error": "the model worker stopped unexpectedly (an RPC worker it used may have gone "
                                      "away, or it crashed or ran out of memory)"}
        assert 3 <= len(lines) < 100
        assert server.healthy()

        refused = httpx.post(server.url + "/api/generate", json={**body, "stream": False}, timeout=120)
        assert refused.status_code == 502 and f"cannot reach the RPC worker {second.endpoint}" in refused.text

        second = RpcWorkerProcess(rpc_home, second.port)  # back on the same port: the service answers again
        again = httpx.post(server.url + "/api/generate", timeout=120,
                           json={**body, "stream": False, "options": GREEDY})
        assert again.status_code == 200 and again.json()["eval_count"] == 16
    finally:
        server.stop()
        first.stop()
        second.stop()
