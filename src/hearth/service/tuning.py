"""The engine settings a model loads with, and why: set by you, measured on this machine, or the default.

An explicit setting (flag, `HEARTH_*`, config file) always wins. For the rest (`flash_attention =
"measure"`, `num_threads = 0`, `num_batch = 0`) the `Tuner` uses the calibration stored for this CPU,
llama.cpp build and model shape, and measures one first if there is none and `tune` is on: a short-lived
worker times the trials `hearth.fit.tuning.calibrate` chooses (about 7 s for the bundled model), once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hearth.config import Settings
from hearth.engine import WorkerClient, WorkerConfig, build_id, physical_cores
from hearth.engine.jobs import FLASH_ATTN, KV_TYPES
from hearth.errors import HearthError, InvalidOptionError
from hearth.fit import ModelShape
from hearth.fit.tuning import (
    Calibration,
    Timing,
    Trial,
    calibrate,
    cpu_identity,
    find_calibration,
    now_text,
    save_calibration,
    trial_size,
    tuning_key,
)

log = logging.getLogger("hearth.tuning")

DEFAULT_FLASH_ATTENTION = "off"  # without a measurement: the choice that is never far off on a CPU
DEFAULT_BATCH = 512
SET_BY_YOU, MEASURED, DEFAULT = "set by you", "measured", "default"
Notice = Callable[[str], None]
# Calibrate on a model's first load when `tune` is on. The test suite turns this off (tests/conftest.py),
# except in the calibration tests, so a thousand tests do not each measure for seconds in their own home.
AUTO_TUNE = True


@dataclass(frozen=True)
class EngineSettings:
    """What a model loads with: flash attention, decode and prompt threads, prompt batch, and why each."""

    flash_attention: str  # on, off or auto
    threads: int
    threads_batch: int
    batch: int
    why: tuple[tuple[str, str], ...]  # (setting, "set by you" | "measured" | "default")

    def reason(self, setting: str) -> str:
        """Why `setting` has its value."""
        return dict(self.why).get(setting, DEFAULT)

    def describe(self) -> str:
        """One line: `flash attention off (measured), 2 threads (measured), batch 512 (default)`."""
        return (f"flash attention {self.flash_attention} ({self.reason('flash_attention')}), "
                f"{self.threads} threads ({self.reason('num_threads')}), "
                f"batch {self.batch} ({self.reason('num_batch')})")

    def to_dict(self) -> dict[str, object]:
        """For `/api/ps` and `--json` output."""
        return {"flash_attention": self.flash_attention, "threads": self.threads,
                "threads_batch": self.threads_batch, "batch": self.batch, "why": dict(self.why)}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> EngineSettings:
        """The inverse of `to_dict` (a `hearth ps` reading the server's answer)."""
        why = data.get("why")
        return cls(str(data.get("flash_attention", "")), int(str(data.get("threads", 0))),
                   int(str(data.get("threads_batch", 0))), int(str(data.get("batch", 0))),
                   tuple((str(k), str(v)) for k, v in why.items()) if isinstance(why, dict) else ())

    def worker_fields(self) -> dict[str, int]:
        """The `WorkerConfig` fields these settings fill."""
        return {"flash_attn": FLASH_ATTN[self.flash_attention], "n_threads": self.threads,
                "n_threads_batch": self.threads_batch, "n_batch": self.batch}


class Tuner:
    """Resolves engine settings per model shape, calibrating on first use."""

    def __init__(self, settings: Settings, home: Path, client_factory: Callable[[WorkerConfig], WorkerClient]
                 | None = None) -> None:
        self.settings = settings
        self.home = home
        self.client_factory = client_factory or WorkerClient
        self.notice: Notice = log.info  # the CLI replaces this with a line on the terminal

    def key(self, shape: ModelShape) -> str:
        """The calibration key for a model of `shape` on this machine and build."""
        return tuning_key(shape, physical_cores(), build_id())

    def stored(self, shape: ModelShape) -> Calibration | None:
        """The calibration kept for `shape`, if any."""
        return find_calibration(self.key(shape), self.home)

    def explicit(self) -> set[str]:
        """The settings you set yourself (these are never measured)."""
        s = self.settings
        return {name for name, given in (("flash_attention", s.flash_attention != "measure"),
                                          ("num_threads", s.num_threads > 0), ("num_batch", s.num_batch > 0))
                if given}

    def settings_for(self, path: Path, shape: ModelShape, name: str) -> EngineSettings:
        """The settings a model of `shape` loads with, measuring them first when that is needed and allowed."""
        explicit = self.explicit()
        calibration = None
        if len(explicit) < 3:
            calibration = self.stored(shape)
            if calibration is None and self.settings.tune and AUTO_TUNE:
                calibration = self._calibrate_quietly(path, shape, name)
        return self._resolve(explicit, calibration)

    def current(self, shape: ModelShape) -> EngineSettings:
        """The settings a model of `shape` would load with now, measuring nothing."""
        explicit = self.explicit()
        return self._resolve(explicit, self.stored(shape) if len(explicit) < 3 else None)

    def calibrate(self, path: Path, shape: ModelShape, name: str) -> Calibration:
        """Measure now (whatever is stored) and keep the result; EngineError if the worker fails."""
        quantized = shape.kv_type != "f16"
        if quantized and self.settings.flash_attention == "off":
            raise InvalidOptionError(f"a {shape.kv_type} KV cache needs flash attention, which is off",
                                     hint="set flash_attention = on, or kv_cache_type = f16",
                                     field="kv_cache_type")
        cores = physical_cores()
        started = time.perf_counter()
        self.notice(f"Measuring this computer's fastest settings for {name} (once, a few seconds)…")
        client = self.client_factory(WorkerConfig(
            str(path), n_ctx=64, n_seq=1, n_batch=64, n_threads=cores, n_threads_batch=cores,
            flash_attn=1 if quantized else 0, kv_type=KV_TYPES[shape.kv_type], embeddings=False, cache_bytes=0,
            offline=self.settings.offline))
        try:
            depth, gen = trial_size(shape.weights_bytes)
            tuned, rows = calibrate(_measure_with(client), cores, quantized_kv=quantized, depth=depth, gen=gen,
                                    progress=lambda what: log.debug("calibrating %s: %s", name, what))
        finally:
            client.close()
        calibration = Calibration(tuned, tuple(rows), time.perf_counter() - started, now_text(), cpu_identity(),
                                  shape.weights_bytes)
        save_calibration(self.key(shape), calibration, self.home)
        self.notice(f"Measured in {calibration.seconds:.1f} s: flash attention {tuned.flash_attention}, "
                    f"{tuned.threads} decode threads, batch {tuned.batch} (kept for next time).")
        return calibration

    def _calibrate_quietly(self, path: Path, shape: ModelShape, name: str) -> Calibration | None:
        try:
            return self.calibrate(path, shape, name)
        except InvalidOptionError:
            raise
        except (HearthError, OSError) as err:  # a measurement is an optimisation: load with the defaults
            log.warning("could not measure engine settings for %s (%s); using the defaults", name, err)
            return None

    def _resolve(self, explicit: set[str], calibration: Calibration | None) -> EngineSettings:
        s, cores = self.settings, physical_cores()
        tuned = calibration.tuned if calibration is not None else None
        source = MEASURED if tuned is not None else DEFAULT
        why = {name: SET_BY_YOU if name in explicit else source
               for name in ("flash_attention", "num_threads", "num_batch")}
        fa = s.flash_attention if "flash_attention" in explicit else (
            tuned.flash_attention if tuned else "on" if s.kv_cache_type != "f16" else DEFAULT_FLASH_ATTENTION)
        if "num_threads" in explicit:
            threads = threads_batch = s.num_threads
        else:
            threads, threads_batch = (tuned.threads if tuned else cores), cores
        batch = s.num_batch if "num_batch" in explicit else (tuned.batch if tuned else DEFAULT_BATCH)
        return EngineSettings(fa, threads, threads_batch, batch, tuple(why.items()))


def _measure_with(client: WorkerClient) -> Callable[[Trial], Timing]:
    def measure(trial: Trial) -> Timing:
        values = client.call("measure", {"flash_attn": int(trial.flash_attn), "threads": trial.threads,
                                         "threads_batch": trial.threads_batch, "batch": trial.batch,
                                         "depth": trial.depth, "gen": trial.gen}, timeout=300.0)
        return Timing(**{k: float(v) for k, v in dict(values).items()})
    return measure
