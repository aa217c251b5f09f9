"""What `Hearth.ps` says about a loaded model: memory, slots, prompt cache and when it unloads."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from hearth.errors import HearthError
from hearth.service.loaded import LoadedModel
from hearth.service.tuning import EngineSettings
from hearth.store import Manifest

STATS_TIMEOUT = 2.0


@dataclass(frozen=True)
class Running:
    """One loaded model, read at one moment."""

    manifest: Manifest
    pid: int | None
    memory_rss: int  # resident bytes of its worker process (0 if unknown)
    memory_estimate: int  # what the scheduler counted for it
    n_ctx: int
    slots: int
    in_flight: int
    keep_alive: float  # seconds; negative: stays loaded
    expires_in: float | None  # seconds until it unloads; None: never (keep_alive < 0)
    worker: dict[str, int] = field(default_factory=dict)  # the worker's counters: slots_busy, cache_hits, ...
    engine: EngineSettings | None = None  # flash attention, threads, batch, and why each
    speculative: str = "off"  # the drafting it loaded with: off, ngram or draft (`hearth.service.speculation`)

    @property
    def name(self) -> str:
        """The model name."""
        return self.manifest.name

    @property
    def size(self) -> int:
        """Its memory: resident bytes when known, else the estimate."""
        return self.memory_rss or self.memory_estimate


def running(loaded: LoadedModel, rss: int) -> Running:
    """A snapshot of `loaded` (asks its worker for its counters, waiting at most a couple of seconds)."""
    try:
        worker = {k: int(v) for k, v in dict(loaded.client.call("stats", timeout=STATS_TIMEOUT)).items()}
    except HearthError:
        worker = {}
    if loaded.keep_alive < 0:
        expires_in = None
    elif loaded.expires_at is None:  # busy: it expires keep_alive after its last request ends
        expires_in = loaded.keep_alive
    else:
        expires_in = max(0.0, loaded.expires_at - time.monotonic())
    return Running(loaded.manifest, loaded.client.pid, rss, loaded.estimate_bytes, loaded.n_ctx,
                   int(loaded.client.info.get("n_seq", 1)), loaded.in_flight, loaded.keep_alive, expires_in, worker,
                   loaded.engine, str(loaded.client.info.get("speculative", "off")))
