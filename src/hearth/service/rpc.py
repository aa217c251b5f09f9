"""RPC workers, as the service sees them: start one on this machine (`hearth rpc-worker`), and spread models
over the configured ones (`rpc_workers`, used by the scheduler). The mechanics are `hearth.engine.rpc`'s.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from hearth import egress
from hearth.engine import physical_cores
from hearth.engine.rpc import (
    DEFAULT_PORT,
    RemoteDevice,
    check_bind_address,
    check_port,
    parse_endpoint,
    probe,
    query,
    serve,
    split_layers,
)
from hearth.errors import HearthError, InvalidOptionError, OfflineError, RpcWorkerError

log = logging.getLogger("hearth.rpc")
LOOPBACK = "127.0.0.1"
NO_AUTH_FLAG = "--i-understand-no-auth"
RETRY_SECONDS = 30.0  # a worker that could not be asked for the budget is asked again after this


@dataclass(frozen=True)
class RpcWorker:
    """An RPC worker about to start here: where it listens, with how many threads, and the warning to show."""

    host: str
    port: int
    threads: int
    warning: str | None = None

    @property
    def endpoint(self) -> str:
        """`host:port`, as the other machine's `rpc_workers` names it (THIS_MACHINE for a wildcard address)."""
        return f"{'THIS_MACHINE' if self.host == '0.0.0.0' else self.host}:{self.port}"

    def run(self) -> None:
        """Serve until the process is stopped; RpcWorkerError if it cannot (the port is taken...)."""
        serve(self.host, self.port, self.threads)


def rpc_worker(host: str = LOOPBACK, port: int = DEFAULT_PORT, threads: int = 0, *,
               no_auth_understood: bool = False) -> RpcWorker:
    """Check where an RPC worker may listen: loopback freely, any other address only when whoever starts it
    says they understand that the protocol has no authentication (`NO_AUTH_FLAG`), and never offline."""
    address = check_bind_address(host)
    if not 0 < port < 65536:
        raise InvalidOptionError(f"port {port} is not between 1 and 65535", field="port")
    warning = None
    if not egress.is_loopback(address):
        if egress.is_offline():
            raise OfflineError(f"an RPC worker on {address} would take connections from other machines, "
                               "and offline mode is on", hint="listen on 127.0.0.1, or leave offline mode")
        if not no_auth_understood:
            raise InvalidOptionError(
                f"an RPC worker on {address} has no password: anyone who can reach port {port} could use it",
                field="host", hint=f"add {NO_AUTH_FLAG} if this is a private network you trust and you will "
                                   f"firewall the port (see docs/rpc.md), or listen on {LOOPBACK}")
        warning = no_auth_warning(address, port)
    check_port(address, port)
    return RpcWorker(address, port, threads if threads > 0 else physical_cores(), warning)


def no_auth_warning(address: str, port: int) -> str:
    """What listening beyond loopback exposes, and how to let only the Hearth machine in."""
    return (
        f"WARNING: this RPC worker listens on {address}:{port} with no authentication and no encryption.\n"
        f"Anyone who can reach that port can use this machine's memory and CPU, read the model data and\n"
        f"prompts' activations sent here, and try bugs in llama.cpp's RPC server. Let only the machine\n"
        f"running Hearth in, e.g. (with HEARTH_MACHINE its address):\n"
        f"  sudo ufw allow from HEARTH_MACHINE to any port {port} proto tcp && sudo ufw deny {port}/tcp\n"
        f"  sudo iptables -A INPUT -p tcp --dport {port} ! -s HEARTH_MACHINE -j DROP\n"
        f"and never forward this port from a router or run it on a public network.")


class RpcWorkers:
    """The workers in `rpc_workers`, for the scheduler: are they there, how much memory, how to split a model.

    A worker serves one client at a time, and a loaded model holds it: the devices are asked for only when
    no model is on the workers (before a load), and remembered for the memory budget in between.
    """

    def __init__(self, endpoints: tuple[str, ...], *, offline: bool = False) -> None:
        self.endpoints = endpoints
        self.offline = offline
        self.devices: list[RemoteDevice] | None = None
        self._checked = 0.0
        self._retry_at = 0.0

    def check(self, max_age: float = 0.0) -> list[RemoteDevice]:
        """Before a load: every worker answers now (RpcWorkerError if not), and what it offers (as asked at
        most `max_age` seconds ago)."""
        self.probe()
        if self.devices is None or time.monotonic() - self._checked >= max_age:
            self.devices = query(self.endpoints)
            self._checked = time.monotonic()
        return self.devices

    def probe(self) -> None:
        """Every worker answers a TCP connection now (RpcWorkerError if not; OfflineError for one on another
        machine in offline mode, whose connections llama.cpp makes beyond Hearth's egress guard)."""
        if self.offline:
            remote = [e for e in self.endpoints if not egress.is_loopback(parse_endpoint(e)[0])]
            if remote:
                raise OfflineError(f"the RPC worker(s) {', '.join(remote)} are on other machines, and offline "
                                   "mode is on", hint="leave offline mode, or remove them from rpc_workers")
        probe(self.endpoints)

    def budget(self, busy: bool) -> int:
        """Bytes the workers add to the memory budget (0 while they cannot be asked and never were)."""
        if self.devices is None and not busy and time.monotonic() >= self._retry_at:
            try:
                self.check()
            except HearthError as err:  # said once, asked again after a while (a listing reads this per model)
                log.warning("the RPC workers do not count towards the memory budget: %s", err)
                self._retry_at = time.monotonic() + RETRY_SECONDS
                return 0
        return sum(d.budget for d in self.devices or [])

    def worker_fields(self, n_layer: int, local: int) -> dict[str, object]:
        """The `WorkerConfig` fields that spread a model of `n_layer` layers over `local` bytes here and the
        workers' devices (as last checked)."""
        devices = self.devices or []
        layers, split = split_layers(n_layer, local, [d.budget for d in devices])
        return {"rpc_servers": self.endpoints, "rpc_layers": layers, "rpc_split": split}

    def explain(self, err: HearthError) -> HearthError:
        """A model worker that died while loading across the workers: which worker went away, if one did."""
        try:
            probe(self.endpoints)
        except RpcWorkerError as lost:
            return lost
        return err
