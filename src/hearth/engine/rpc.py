"""RPC workers: one model spread over several machines' memory with llama.cpp's RPC backend.

`hearth rpc-worker` runs ggml's RPC server (`ggml_backend_rpc_start_server`) on a machine's CPU; a model
loaded with `rpc_workers` keeps its first layers here and sends the rest to those workers: the model worker
registers each endpoint's devices (`ggml_backend_rpc_add_server`) and hands them to
`llama_model_load_from_file` (`llama_model_params.devices`, `n_gpu_layers`, `tensor_split`). This module is
the parent's side and never loads llama.cpp; `hearth.engine.ggml` holds the native calls.

What the vendored llama.cpp (ggml/src/ggml-rpc/) decides, and what Hearth does about it:

- A client that cannot connect, or whose worker stops answering, aborts its whole process (`GGML_ABORT` in
  `rpc_dispatcher::start`, `RPC_STATUS_ASSERT`). So the parent probes each endpoint over TCP before a load
  (`probe`: `RpcWorkerError`, nothing started), asks for the devices in a child process (`query`), and a
  worker lost mid-answer kills only the model worker: its answers end with an in-band error, the server
  stays up.
- A worker serves one client at a time (its accept loop calls `rpc_serve_client` and waits for it), and a
  second client waits in silence: `query` has a timeout, and the scheduler keeps one model on the workers.
- The server binds an IPv4 address (`inet_addr`); clients resolve names (`gethostbyname`), IPv4 only.
- A worker's CPU device reports its machine's whole RAM as free on Linux (`ggml_backend_cpu_device_get_memory`:
  "free system memory is ill-defined"), so Hearth counts `BUDGET_SHARE` of it, as it does for this machine.
- The protocol has neither authentication nor encryption: whoever reaches the port can allocate memory on
  the worker and run computations there. Workers listen on loopback unless told otherwise, explicitly.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass

from hearth.errors import InvalidOptionError, RpcWorkerError

DEFAULT_PORT = 50052  # llama.cpp's rpc-server default
PROBE_TIMEOUT = 3.0
QUERY_TIMEOUT = 30.0
BUDGET_SHARE = 0.8  # of a worker's reported memory, like the local default memory budget


@dataclass(frozen=True)
class RemoteDevice:
    """A device an RPC worker offers: its endpoint, llama.cpp's name for it (RPC0...) and memory in bytes."""

    endpoint: str
    name: str
    free: int
    total: int

    @property
    def budget(self) -> int:
        """The bytes of it a model may use (`BUDGET_SHARE` of what it reports free)."""
        return int(self.free * BUDGET_SHARE)


def parse_endpoint(text: str) -> tuple[str, int]:
    """`host:port` (IPv4 address or name) → (host, port); InvalidOptionError naming what is wrong."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 or host.startswith("["):
        raise InvalidOptionError(f"RPC worker {text!r} is not host:port", field="rpc_workers",
                                 hint="e.g. 192.168.1.20:50052 (llama.cpp's RPC speaks IPv4 only)")
    return host, int(port)


def check_bind_address(host: str) -> str:
    """The IPv4 address an RPC worker may listen on (llama.cpp's server takes nothing else)."""
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        raise InvalidOptionError(f"an RPC worker listens on an IPv4 address, not {host!r}", field="host",
                                 hint="e.g. --host 127.0.0.1 or --host 192.168.1.20") from None


def probe(endpoints: tuple[str, ...], timeout: float = PROBE_TIMEOUT) -> None:
    """Connect to each endpoint over TCP and hang up; RpcWorkerError naming every one that did not answer."""
    down = []
    for endpoint in endpoints:
        host, port = parse_endpoint(endpoint)
        try:
            with socket.create_connection((host, port), timeout=timeout):
                pass
        except OSError as err:
            down.append(f"{endpoint} ({err.strerror or err})")
    if down:
        raise RpcWorkerError(
            f"cannot reach the RPC worker{'s' if len(down) > 1 else ''} {', '.join(down)}",
            hint="start `hearth rpc-worker` there and let this machine reach its port, or remove it from "
                 "rpc_workers (HEARTH_RPC_WORKERS, hearth serve --rpc-workers)")


def query(endpoints: tuple[str, ...], timeout: float = QUERY_TIMEOUT) -> list[RemoteDevice]:
    """The devices the workers offer, with their memory, asked by a child process (llama.cpp aborts the
    process whose RPC connection fails, and this may be the server's); probe first."""
    command = [sys.executable, "-m", "hearth.engine.ggml", *endpoints]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise RpcWorkerError(
            f"the RPC workers {', '.join(endpoints)} did not answer within {timeout:.0f} s",
            hint="an RPC worker serves one client at a time: is another program (or another Hearth) using it?",
        ) from None
    try:
        answer = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        answer = {}
    if done.returncode != 0 or "devices" not in answer:
        why = answer.get("error") or _last_line(done.stderr) or f"exit status {done.returncode}"
        raise RpcWorkerError(f"could not use the RPC workers {', '.join(endpoints)}: {why}")
    return [RemoteDevice(str(d["endpoint"]), str(d["name"]), int(d["free"]), int(d["total"]))
            for d in answer["devices"]]


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def split_layers(n_layer: int, local: int, remote: list[int]) -> tuple[int, tuple[float, ...]]:
    """How many of a model's `n_layer` + 1 layers (the output layer counts) go to the RPC devices, and their
    proportions, for memory `local` here and `remote` on each device: every share in proportion to its memory."""
    total = local + sum(remote)
    if not remote or total <= 0:
        return 0, ()
    layers = n_layer + 1
    offloaded = min(layers, max(1, round(layers * sum(remote) / total)))
    return offloaded, tuple(r / max(1, sum(remote)) for r in remote)


def check_port(address: str, port: int) -> None:
    """RpcWorkerError saying why an RPC worker could not listen on `address:port` (llama.cpp only says
    "Failed to create server socket")."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as trial:
        trial.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as llama.cpp's server socket does
        try:
            trial.bind((address, port))
        except OSError as err:
            raise RpcWorkerError(f"cannot listen on {address}:{port}: {err.strerror or err}",
                                 hint="choose another --port, or stop the program using this one") from None


def serve(host: str, port: int, threads: int) -> None:
    """Run an RPC worker on this machine's CPU until the process ends; RpcWorkerError if it cannot start."""
    address = check_bind_address(host)
    check_port(address, port)
    from hearth.engine.ggml import serve_rpc

    failed: list[Exception] = []

    def run() -> None:
        try:
            serve_rpc(f"{address}:{port}", threads)
        except Exception as err:  # EngineError: no RPC backend in this build
            failed.append(err)

    # llama.cpp's server loop never returns to Python: in a thread of its own, so that the main thread still
    # receives Ctrl-C (KeyboardInterrupt)
    server = threading.Thread(target=run, name="hearth-rpc-server", daemon=True)
    server.start()
    while server.is_alive():
        server.join(0.5)
    if failed:
        raise failed[0]
    raise RpcWorkerError(f"the RPC worker on {address}:{port} stopped (llama.cpp's message is above)")
