"""The parent side of a model worker: start it, send jobs, stream events back, notice when it dies.

`WorkerClient` starts `worker_main` in a fresh (spawned) process and runs one reader thread that routes
each event to the sink its job registered. A sink is any callable; `stream()` gives a blocking iterator for
the CLI, and the server registers sinks that hand events to its event loop. If the worker dies, every job
still running gets a final `Done("error")` and every pending call raises `WorkerCrashedError`: nothing
waits forever.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing as mp
import queue
import signal
import sys
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hearth import errors
from hearth.engine.entry import worker_main
from hearth.engine.jobs import Job, WorkerConfig
from hearth.types import Done, Event, Sink

log = logging.getLogger("hearth.engine")
_CRASHED = "the model worker stopped unexpectedly (it may have crashed or run out of memory)"
# llama.cpp aborts a process whose RPC worker stops answering (hearth.engine.rpc)
_CRASHED_RPC = ("the model worker stopped unexpectedly (an RPC worker it used may have gone away, or it crashed "
                "or ran out of memory)")


_MAIN_LOCK = threading.Lock()


@contextmanager
def _bare_main() -> Iterator[None]:
    """Start a spawned worker without re-running the parent's main module in it.

    multiprocessing's spawn re-imports the parent's `__main__` in the child (the `hearth` console script,
    which imports the whole CLI: about 0.4 s of every model load). The worker needs none of it: its target,
    `worker_main`, is found by its own module name. So while the child is prepared, `__main__` is an empty
    module, which spawn leaves alone.
    """
    with _MAIN_LOCK:
        real = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            if real is not None:
                sys.modules["__main__"] = real


class WorkerClient:
    """A running model worker process and the jobs in flight on it."""

    def __init__(self, config: WorkerConfig, *, start_timeout: float = 300.0) -> None:
        self.config = config
        self._crashed = _CRASHED_RPC if config.rpc_servers else _CRASHED
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self.process = ctx.Process(target=worker_main, args=(child, config), daemon=True, name="hearth-worker")
        with _bare_main():
            self.process.start()
        child.close()
        self._send_lock = threading.Lock()
        self._sinks: dict[int, Sink] = {}
        self._calls: dict[int, queue.Queue[tuple[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.alive = True
        self._closing = False
        self.info = self._await_ready(start_timeout)
        self._reader = threading.Thread(target=self._read, name="hearth-worker-reader", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int | None:
        """The worker's process id."""
        return self.process.pid

    def _await_ready(self, timeout: float) -> dict[str, Any]:
        try:
            if not self._conn.poll(timeout):
                self.kill()
                raise errors.EngineError(f"the model took more than {timeout:.0f}s to load")
            message = self._conn.recv()
        except (EOFError, OSError):
            self.alive = False
            self.process.join(1)
            raise errors.WorkerCrashedError(
                f"the model worker exited while loading (exit code {self.process.exitcode})") from None
        if message[0] == "failed":
            self.alive = False
            self.process.join(5)
            cls = getattr(errors, message[1], errors.EngineError)
            raise cls(message[2])
        return dict(message[1])

    # -- jobs -----------------------------------------------------------------------------------------------
    def submit(self, job: Job, sink: Sink) -> None:
        """Start a job; its events go to `sink` (called on the reader thread)."""
        with self._lock:
            if not self.alive:
                raise errors.WorkerCrashedError(self._crashed)
            self._sinks[job.id] = sink
        self._send(("generate", job))

    def cancel(self, job_id: int) -> None:
        """Ask the worker to stop a job at its next step (its sink still receives a final Done)."""
        if self.alive:
            try:
                self._send(("cancel", job_id))
            except errors.WorkerCrashedError:
                pass

    def stream(self, job: Job) -> Iterator[Event]:
        """Run a job and yield its events; closing the iterator early cancels the job."""
        events: queue.Queue[Event] = queue.Queue()
        self.submit(job, events.put)
        finished = False
        try:
            while True:
                event = events.get()
                yield event
                if isinstance(event, Done):
                    finished = True
                    return
        finally:
            if not finished:
                self.cancel(job.id)

    def new_job_id(self) -> int:
        """A job id unique for this worker."""
        return next(self._ids)

    # -- calls ----------------------------------------------------------------------------------------------
    def call(self, method: str, *args: Any, timeout: float = 600.0) -> Any:
        """Run a method in the worker (tokenize, embed, info, stats) and return its value."""
        call_id = next(self._ids)
        reply: queue.Queue[tuple[str, Any]] = queue.Queue()
        with self._lock:
            if not self.alive:
                raise errors.WorkerCrashedError(self._crashed)
            self._calls[call_id] = reply
        self._send(("call", call_id, method, args))
        try:
            kind, value = reply.get(timeout=timeout)
        except queue.Empty:
            raise errors.EngineError(f"the model worker did not answer {method!r} in time") from None
        finally:
            with self._lock:
                self._calls.pop(call_id, None)
        if kind == "reply":
            return value
        if kind == "crashed":
            raise errors.WorkerCrashedError(self._crashed)
        cls_name, message = value
        raise getattr(errors, cls_name, errors.EngineError)(message)

    def tokenize(self, text: str, *, add_special: bool = True) -> list[int]:
        """Text → token ids with the model's tokenizer (special tokens parsed)."""
        return list(self.call("tokenize", text, add_special))

    def tokenize_prompt(self, text: str, spans: list[tuple[int, int]], *, add_special: bool = True) -> list[int]:
        """A rendered prompt → token ids, the `spans` (message contents) never read as control tokens."""
        return list(self.call("tokenize_prompt", text, spans, add_special))

    # -- plumbing -------------------------------------------------------------------------------------------
    def _send(self, message: tuple[Any, ...]) -> None:
        try:
            with self._send_lock:
                self._conn.send(message)
        except (OSError, ValueError):
            raise errors.WorkerCrashedError(self._crashed) from None

    def _read(self) -> None:
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                break
            kind = message[0]
            if kind == "event":
                self._deliver(message[1], message[2])
            elif kind in ("reply", "raise"):
                with self._lock:
                    reply = self._calls.get(message[1])
                if reply is not None:
                    reply.put(("reply", message[2]) if kind == "reply" else ("raise", (message[2], message[3])))
        self._on_exit()

    def _deliver(self, job_id: int, event: Event) -> None:
        with self._lock:
            sink = self._sinks.pop(job_id, None) if isinstance(event, Done) else self._sinks.get(job_id)
        if sink is not None:
            sink(event)

    def _on_exit(self) -> None:
        asked_to_stop = self._closing  # read now: failing the answers below makes the scheduler close us
        with self._lock:
            self.alive = False
            sinks, self._sinks = self._sinks, {}
            calls, self._calls = self._calls, {}
        for sink in sinks.values():  # first the running answers, which must not wait for the exit code
            sink(Done("error", error=self._crashed))
        for reply in calls.values():
            reply.put(("crashed", None))
        if not asked_to_stop:  # say how it died (the answers only say that it did)
            self._log_death()

    def _log_death(self) -> None:
        self.process.join(timeout=1.0)
        code = self.process.exitcode
        if code is not None and code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
            log.error("the model worker (pid %s) was killed by %s", self.process.pid, name)
        else:
            log.error("the model worker (pid %s) exited unexpectedly (exit code %s)", self.process.pid, code)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker (politely, then by force)."""
        self._closing = True
        if self.process.is_alive():
            try:
                self._send(("shutdown",))
            except errors.WorkerCrashedError:
                pass
            self.process.join(timeout)
        if self.process.is_alive():
            self.kill()
        self._conn.close()

    def kill(self) -> None:
        """Kill the worker process at once."""
        self._closing = True
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
