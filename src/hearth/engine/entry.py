"""The worker process's entry point, importable without loading llama.cpp in the parent."""

from __future__ import annotations

import signal
from multiprocessing.connection import Connection

from hearth.engine.jobs import WorkerConfig


def worker_main(conn: Connection, config: WorkerConfig) -> None:
    """Entry point of a model worker process (see `hearth.engine.worker`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the parent, which cancels jobs
    if config.offline:
        from hearth.egress import install

        install(None, offline=True, command="hearth model worker")
    from hearth.engine.worker import run_worker

    run_worker(conn, config)
