"""What the benchmark scripts share: the CPU they ran on, and keeping a measurement honest on a shared machine."""

from __future__ import annotations

import platform
import time
from pathlib import Path

import psutil


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


class Interference:
    """CPU time used by other processes (and stolen by the hypervisor) while we measure."""

    def __init__(self) -> None:
        self.me = psutil.Process()
        self.n_cpu = psutil.cpu_count(logical=True) or 1
        self.start()

    def _busy(self) -> tuple[float, float, float]:
        t = psutil.cpu_times()
        own = self.me.cpu_times()
        busy = t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
        mine = own.user + own.system + own.children_user + own.children_system
        return busy, mine, getattr(t, "steal", 0.0)

    def start(self) -> None:
        """Begin a measurement window."""
        self.t0 = time.monotonic()
        self.b0 = self._busy()

    def percent(self) -> tuple[float, float]:
        """(foreign %, steal %) of all CPUs since `start()`."""
        busy, mine, steal = self._busy()
        wall = (time.monotonic() - self.t0) * self.n_cpu
        foreign = (busy - self.b0[0]) - (mine - self.b0[1])
        return max(0.0, 100 * foreign / wall), 100 * (steal - self.b0[2]) / wall


def wait_quiet(limit_s: float, threshold: float) -> float:
    """Wait (up to `limit_s`) until other processes use under `threshold` % of the CPUs; return that %."""
    deadline = time.monotonic() + limit_s
    told = False
    while True:
        pct = psutil.cpu_percent(interval=2.0)
        if pct < threshold or time.monotonic() > deadline:
            return pct
        if not told:
            print(f"  waiting for the machine to go quiet ({pct:.0f} % CPU busy)…", flush=True)
            told = True
