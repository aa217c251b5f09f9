"""Engine settings chosen by measurement on this machine: which trials to run, which setting wins, and where
the result is kept.

A CPU's best llama.cpp settings cannot be known from a table: flash attention is 2.5x slower at a long
history on one Xeon and 15 % faster everywhere on an EPYC of the same class. So the first time a model of
a given shape is loaded, `calibrate` asks a measuring function (the engine's `measure_speed`, in a worker;
tests pass fake timings) for a few `Trial`s and keeps the winner:

1. flash attention off and on, each timed on decoding at an empty context, on a `depth`-token prompt and
   on decoding after it; the winner costs least for a typical turn (`turn_seconds`: a 512-token prompt
   and 128 tokens of answer, 1,500 tokens into a chat; decode time grows with the history, extrapolated
   linearly from the two depths measured);
2. decode threads: the physical cores, or one fewer (which wins on a machine busy with other work);
   prompts always use every core, where the arithmetic is;
3. prompt batch: 512 tokens per `llama_decode`, or 256.

A later setting must beat the earlier one by `MARGIN` to be chosen, so noise does not flip choices (by
`BATCH_MARGIN` for the prompt batch, whose effect is small next to the run-to-run noise of a shared
machine: one trial each on an Emerald Rapids VM varied by 20 %). The
trials shrink for large models (`trial_size`) so that measuring stays a matter of seconds, not minutes.
Results live in `$HEARTH_HOME/tuning.json`, keyed by CPU model (name and feature flags), core count,
llama.cpp build and model shape (`tuning_key`); a damaged file counts as no measurement.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from hearth.fit.shape import ModelShape
from hearth.paths import ensure_private_dir, hearth_home
from hearth.store.manifest import TEMP_PREFIX

TUNING_FILE = "tuning.json"
TUNING_VERSION = 1
MARGIN = 1.03  # a challenger must be 3 % faster to replace the incumbent
BATCH_MARGIN = 1.10
DEPTH = 384  # prompt tokens per trial, and the grown context decode is measured at (keeps the bundled
# model's calibration under 10 s: three prompts of this length are most of it)
GEN = 16  # tokens decoded per decode measurement
BATCHES = (512, 256)
SIMILAR_SIZE = 4.0
TURN_PROMPT, TURN_ANSWER, TURN_DEPTH = 512, 128, 1500
FULL_SIZE_BYTES = 160 << 20  # models up to this size get full-length trials; larger ones shorter ones
MIN_DEPTH, MIN_GEN = 64, 4


@dataclass(frozen=True)
class Trial:
    """One setting to time: flash attention, decode threads, prompt batch, prompt length and decode length."""

    flash_attn: bool
    threads: int
    threads_batch: int
    batch: int
    depth: int = DEPTH
    gen: int = GEN


@dataclass(frozen=True)
class Timing:
    """Tokens/s measured for a trial (0: not measured)."""

    decode_empty: float = 0.0
    prompt: float = 0.0
    decode_deep: float = 0.0


Measure = Callable[[Trial], Timing]


@dataclass(frozen=True)
class Tuned:
    """The settings calibration chose."""

    flash_attention: str  # "on" or "off"
    threads: int
    batch: int


@dataclass(frozen=True)
class Calibration:
    """A stored measurement: what won, every trial timed, how long it took and when."""

    tuned: Tuned
    trials: tuple[tuple[Trial, Timing], ...]
    seconds: float
    measured_at: str
    cpu: str
    weights_bytes: int = 0  # the calibrated model's size, for correcting estimates of models near it

    @property
    def decode_speed(self) -> float:
        """Decode tokens/s at an empty context with the chosen settings (what `hearth fit` predicts with)."""
        best = [t.decode_empty for trial, t in self.trials
                if trial.flash_attn == (self.tuned.flash_attention == "on") and trial.threads == self.tuned.threads
                and t.decode_empty > 0]
        return max(best, default=0.0)

    def to_dict(self) -> dict[str, object]:
        """For JSON: the stored form."""
        return {"tuned": asdict(self.tuned), "seconds": round(self.seconds, 2), "measured_at": self.measured_at,
                "cpu": self.cpu, "weights_bytes": self.weights_bytes,
                "trials": [{"trial": asdict(trial), "timing": asdict(timing)} for trial, timing in self.trials]}

    @classmethod
    def from_dict(cls, data: object) -> Calibration:
        """The stored form back; `ValueError`/`TypeError`/`KeyError` if it is damaged."""
        if not isinstance(data, dict):
            raise ValueError("not an object")
        tuned = Tuned(**data["tuned"])
        if tuned.flash_attention not in ("on", "off") or tuned.threads < 1 or tuned.batch < 1:
            raise ValueError("settings out of range")
        trials = tuple((Trial(**row["trial"]), Timing(**row["timing"])) for row in data["trials"])
        return cls(tuned, trials, float(data["seconds"]), str(data["measured_at"]), str(data["cpu"]),
                   int(data.get("weights_bytes", 0)))


def turn_seconds(t: Timing, depth: int = DEPTH) -> float:
    """Seconds a typical turn would take at these speeds (see the module docstring)."""
    if t.prompt <= 0 or t.decode_empty <= 0:
        return float("inf")
    empty = 1.0 / t.decode_empty
    deep = 1.0 / t.decode_deep if t.decode_deep > 0 else empty
    per_token = empty + (deep - empty) * TURN_DEPTH / max(1, depth)
    return TURN_PROMPT / t.prompt + TURN_ANSWER * per_token


def trial_size(weights_bytes: int) -> tuple[int, int]:
    """(prompt tokens, decoded tokens) per trial for a model of this size: full length up to `FULL_SIZE_BYTES`,
    then shorter in proportion (a model ten times larger evaluates prompts about ten times slower)."""
    scale = min(1.0, FULL_SIZE_BYTES / max(1, weights_bytes))
    return max(MIN_DEPTH, int(DEPTH * scale)), max(MIN_GEN, int(GEN * scale))


def calibrate(measure: Measure, cores: int, *, quantized_kv: bool = False,
              progress: Callable[[str], None] | None = None, depth: int = DEPTH,
              gen: int = GEN) -> tuple[Tuned, list[tuple[Trial, Timing]]]:
    """Run the trials (see the module docstring) through `measure` and choose; every trial is returned.

    `depth` and `gen` are each trial's prompt and decode lengths (`trial_size`)."""
    say = progress or (lambda _text: None)
    cores = max(1, cores)
    rows: list[tuple[Trial, Timing]] = []

    def run(trial: Trial, what: str) -> Timing:
        say(what)
        timing = measure(trial)
        rows.append((trial, timing))
        return timing

    fa_options = (True,) if quantized_kv else (False, True)  # a quantized V cache needs flash attention
    by_fa = {fa: run(Trial(fa, cores, cores, BATCHES[0], depth, gen), f"flash attention {'on' if fa else 'off'}")
             for fa in fa_options}
    fa = quantized_kv  # flash attention off is the incumbent: on must win by MARGIN
    if not quantized_kv and turn_seconds(by_fa[True], depth) * MARGIN < turn_seconds(by_fa[False], depth):
        fa = True
    base = by_fa[fa]
    threads = cores
    if cores > 1:
        fewer = run(Trial(fa, cores - 1, cores, BATCHES[0], depth=0, gen=gen), f"{cores - 1} decode threads")
        if fewer.decode_empty > base.decode_empty * MARGIN:
            threads = cores - 1
    batch = BATCHES[0]
    for other in BATCHES[1:]:
        timing = run(Trial(fa, threads, cores, other, depth=depth, gen=0), f"prompt batch {other}")
        if timing.prompt > base.prompt * BATCH_MARGIN:
            batch = other
    return Tuned("on" if fa else "off", threads, batch), rows


# -- keys and storage ----------------------------------------------------------------------------------------

def cpu_identity() -> str:
    """This CPU as calibration keys it: its model name and a digest of its feature flags (virtual machines
    often report only "Intel Xeon Processor" for very different generations)."""
    name, flags = "unknown CPU", ""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "Model", "cpu model") and name == "unknown CPU":
                name = " ".join(value.split())
            elif key in ("flags", "Features") and not flags:
                flags = " ".join(sorted(value.split()))
    except OSError:
        import platform

        name = platform.processor() or platform.machine() or name
    digest = hashlib.sha256(flags.encode()).hexdigest()[:8] if flags else "noflags"
    return f"{name} [{digest}]"


def shape_key(shape: ModelShape) -> str:
    """What of a model's shape its speed depends on."""
    return (f"{shape.architecture}/{shape.quantization}/{shape.parameters}/{shape.weights_bytes}/"
            f"{shape.n_layer}x{shape.n_embd}/kv-{shape.kv_type}")


def tuning_key(shape: ModelShape, cores: int, build: str, cpu: str | None = None) -> str:
    """The key a calibration is kept under: CPU, cores, llama.cpp build and model shape."""
    return f"{cpu or cpu_identity()} | {cores} cores | llama.cpp {build} | {shape_key(shape)}"


def load_calibrations(home: Path | None = None) -> dict[str, Calibration]:
    """Every stored calibration (an unreadable file or entry counts as none)."""
    try:
        data = json.loads(_path(home).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != TUNING_VERSION or not isinstance(data.get("entries"), dict):
        return {}
    out = {}
    for key, entry in data["entries"].items():
        try:
            out[str(key)] = Calibration.from_dict(entry)
        except (ValueError, TypeError, KeyError):
            continue
    return out


def find_calibration(key: str, home: Path | None = None) -> Calibration | None:
    """The stored calibration for `key`, if any."""
    return load_calibrations(home).get(key)


def save_calibration(key: str, calibration: Calibration, home: Path | None = None) -> None:
    """Keep `calibration` under `key` (other keys are kept)."""
    entries = load_calibrations(home)
    entries[key] = calibration
    _write_all(entries, home)


def _write_all(entries: dict[str, Calibration], home: Path | None) -> None:
    """The whole file, atomically (a temporary file beside it, then `os.replace`) and readable by you alone."""
    path = _path(home)
    ensure_private_dir(path.parent)
    temp = path.with_name(f"{TEMP_PREFIX}tuning-{os.getpid()}")  # swept by the store's gc if left behind
    body = {"version": TUNING_VERSION, "entries": {k: v.to_dict() for k, v in entries.items()}}
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(body, out, indent=1)
        out.write("\n")
    os.replace(temp, path)


def calibrated_speed(shape: ModelShape, predict: Callable[[ModelShape], float], cores: int, build: str,
                     home: Path | None = None) -> tuple[float, str] | None:
    """Decode tokens/s for `shape` from this machine's calibrations, and how it was found: measured for
    this very shape, or `predict`'s estimate scaled by how a calibrated model of similar size (within
    `SIMILAR_SIZE`x) measured against its own estimate. None when there is nothing to go on."""
    entries = load_calibrations(home)
    exact = entries.get(tuning_key(shape, cores, build))
    if exact is not None and exact.decode_speed > 0:
        return exact.decode_speed, f"measured on this machine ({exact.measured_at[:10]})"
    prefix = tuning_key(shape, cores, build).rsplit(" | ", 1)[0] + " | "
    near = [c for k, c in entries.items() if k.startswith(prefix) and c.weights_bytes > 0 and c.decode_speed > 0
            and max(c.weights_bytes, shape.weights_bytes) <= SIMILAR_SIZE * min(c.weights_bytes, shape.weights_bytes)]
    if not near:
        return None
    closest = min(near, key=lambda c: abs(c.weights_bytes - shape.weights_bytes))
    other = replace(shape, weights_bytes=closest.weights_bytes,
                    parameters=max(1, int(shape.parameters * closest.weights_bytes / max(1, shape.weights_bytes))),
                    experts=0, experts_used=0)
    expected = predict(other)
    if expected <= 0:
        return None
    return predict(shape) * closest.decode_speed / expected, "estimated, corrected by a model measured here"


def now_text() -> str:
    """The time a calibration is stamped with."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _path(home: Path | None) -> Path:
    return (home or hearth_home()) / TUNING_FILE
