"""This machine: total and free memory, physical cores, and measured memory bandwidth.

Memory bandwidth is what generation speed on a CPU depends on, so Hearth measures it once: each physical
core sums its share of a 256 MB array a few times (numpy releases the GIL, so the threads run in parallel)
and the best pass counts. That takes about a second; the result is cached in `$HEARTH_HOME/machine.json`
and measured again only when the core count or the memory size changes.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from hearth.engine.sizing import physical_cores
from hearth.paths import ensure_private_dir, hearth_home
from hearth.store.manifest import TEMP_PREFIX

CACHE_FILE = "machine.json"
CACHE_VERSION = 1
ASSUMED_BANDWIDTH = 10e9  # bytes/s: a modest laptop, used only when measuring is not possible
_ARRAY_BYTES = 256 << 20
_PASSES = 4


@dataclass(frozen=True)
class Machine:
    """What decides whether a model fits and how fast it runs here."""

    total: int
    available: int
    cores: int
    bandwidth: float
    bandwidth_measured: bool

    def to_dict(self) -> dict[str, object]:
        """For JSON output."""
        return {"total_memory": self.total, "available_memory": self.available, "cores": self.cores,
                "memory_bandwidth": round(self.bandwidth), "bandwidth_measured": self.bandwidth_measured}


def this_machine(home: Path | None = None, *, measure: bool = True) -> Machine:
    """This machine now; bandwidth from the cache, measured (and cached) if missing and `measure`."""
    memory = psutil.virtual_memory()
    cores = physical_cores()
    bandwidth = _cached_bandwidth(home, cores, memory.total)
    measured = bandwidth is not None
    if bandwidth is None and measure:
        try:
            bandwidth = measure_bandwidth(cores)
            _store_bandwidth(home, cores, memory.total, bandwidth)
            measured = True
        except (MemoryError, OSError, ImportError):  # a tiny or locked-down machine: fall back to a guess
            bandwidth = None
    return Machine(memory.total, memory.available, cores, bandwidth or ASSUMED_BANDWIDTH, measured)


def measure_bandwidth(threads: int, array_bytes: int = _ARRAY_BYTES) -> float:
    """Bytes per second that `threads` threads together read from memory (best of a few passes)."""
    import numpy as np

    data = np.ones(array_bytes // 8, dtype=np.float64)  # written once, so every page is really there
    parts = np.array_split(data, max(1, threads))
    best = 0.0
    for _ in range(_PASSES):
        workers = [threading.Thread(target=part.sum) for part in parts]
        started = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - started
        best = max(best, data.nbytes / elapsed if elapsed > 0 else 0.0)
    return best


def _cache_path(home: Path | None) -> Path:
    return (home or hearth_home()) / CACHE_FILE


def _cached_bandwidth(home: Path | None, cores: int, total: int) -> float | None:
    try:
        data = json.loads(_cache_path(home).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
        return None
    if data.get("cores") != cores or data.get("total_memory") != total:
        return None  # different hardware (or a VM resized): measure again
    value = data.get("memory_bandwidth")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else None


def _store_bandwidth(home: Path | None, cores: int, total: int, bandwidth: float) -> None:
    path = _cache_path(home)
    try:
        ensure_private_dir(path.parent)
        temp = path.with_name(f"{TEMP_PREFIX}machine-{os.getpid()}")  # swept by the store's gc
        temp.write_text(json.dumps({"version": CACHE_VERSION, "cores": cores, "total_memory": total,
                                    "memory_bandwidth": round(bandwidth),
                                    "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}) + "\n",
                        encoding="utf-8")
        os.replace(temp, path)
    except OSError:  # only a cache
        pass
