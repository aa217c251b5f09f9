"""Hearth's HTTP server against llama.cpp's `llama-server`: same model, build, threads, context and slots.

One client streams one request at a time. For every request the client records, from its own clock:

* TTFT: from sending the request to the first chunk that carries text;
* ITL: the gaps between consecutive text chunks (each is one token on both servers);
* the CPU time the HTTP server process spent (Hearth's server process only: its model runs in a separate
  worker; llama-server decodes in-process, so it has no such figure), per streamed token;
* the server's own prompt-evaluation time (llama-server: `timings.prompt_ms` of the last chunk; Hearth:
  `prompt_eval_duration` of the Ollama route's last line), so that *server overhead on TTFT* =
  TTFT − prompt evaluation: HTTP, validation, model lookup, tokenizing, queueing and event relay.

Targets, all streaming a raw completion of the same counting prompt (greedy, repeat penalty off, so the
answer runs to `max_tokens` and is the same on every target):
  llama-server `POST /v1/completions` · Hearth `POST /v1/completions` · Hearth `POST /api/generate` (raw)
Each request gets a unique first line, so neither server answers from its prompt cache (with
`--repeat-prompt` every request is the same, so prompt evaluation shrinks to one token on both servers and
TTFT is almost all overhead); rounds rotate the order of the targets so drift on a shared machine hits all
of them.

The llama-server binary comes from bench/build_llamacpp.sh (the llama.cpp that llama-cpp-python vendors).
Usage: .venv/bin/python bench/server_bench.py [--runs 20] [--max-tokens 128] [--threads T] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
from benchlib import cpu_model

ROOT = Path(__file__).resolve().parent.parent
LLAMA_SERVER = ROOT / ".build" / "llamacpp" / "bin" / "llama-server"
HEARTH = Path(sys.executable).with_name("hearth")
COUNTING = ", ".join(str(i) for i in range(1, 21)) + ","


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], path: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            if httpx.get(url + path, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not become ready")


def start_llama_server(model: Path, threads: int, ctx: int, parallel: int,
                       fa: str) -> tuple[str, subprocess.Popen[bytes]]:
    if not LLAMA_SERVER.exists():
        raise SystemExit(f"{LLAMA_SERVER} is missing: build it with bench/build_llamacpp.sh")
    port = free_port()
    # llama-server's -c is the whole KV cache, shared by its -np slots; Hearth's num_ctx is per slot.
    # "default": llama-server's own flash attention and batch sizes (what its users get)
    tuning = [] if fa == "default" else ["-b", "512", "-ub", "512", "-fa", fa]
    args = [str(LLAMA_SERVER), "-m", str(model), "--host", "127.0.0.1", "--port", str(port), "-t", str(threads),
            "-tb", str(threads), "-c", str(ctx * parallel), "-np", str(parallel), "--no-warmup", *tuning]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, proc, "/health")
    return url, proc


def start_hearth(home: Path, threads: int, ctx: int, parallel: int, fa: str,
                 extra: list[str]) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    env = {**os.environ, "HEARTH_HOME": str(home)}
    env.pop("HEARTH_HOST", None)
    # "default": Hearth's own choice, measured on this machine at the first load (in the warm-up, untimed)
    tuning = [] if fa == "default" else ["--num-threads", str(threads), "--flash-attention", fa]
    args = [str(HEARTH), "serve", "--port", str(port), "--num-ctx", str(ctx), "--num-parallel", str(parallel),
            *tuning, *extra]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, proc, "/health")
    return url, proc


def _sse(response: httpx.Response) -> Iterator[dict[str, Any]]:
    for line in response.iter_lines():
        if line.startswith("data: ") and line != "data: [DONE]":
            yield json.loads(line[6:])


def _ndjson(response: httpx.Response) -> Iterator[dict[str, Any]]:
    for line in response.iter_lines():
        if line.strip():
            yield json.loads(line)


def measure(client: httpx.Client, target: str, url: str, model: str, prompt: str, max_tokens: int,
            server: psutil.Process | None = None) -> dict[str, Any]:
    """One streamed request: TTFT, per-token gaps, server-side prompt time, server CPU time."""
    cpu_before = sum(server.cpu_times()[:2]) if server else 0.0
    if target == "hearth-ollama":
        path, body = "/api/generate", {"model": model, "prompt": prompt, "raw": True, "stream": True, "options": {
            "temperature": 0, "repeat_penalty": 1.0, "num_predict": max_tokens, "seed": 1}}
    else:
        path, body = "/v1/completions", {"model": model, "prompt": prompt, "max_tokens": max_tokens, "stream": True,
                                         "temperature": 0, "repeat_penalty": 1.0, "seed": 1}
    times: list[float] = []
    prompt_ms = None
    started = time.perf_counter()
    # a new connection each time: a pooled one the server has just closed would fail the request
    with client.stream("POST", url + path, json=body, headers={"Connection": "close"}) as response:
        response.raise_for_status()
        for event in (_ndjson(response) if target == "hearth-ollama" else _sse(response)):
            now = time.perf_counter()
            text = event.get("response") if target == "hearth-ollama" else (
                event["choices"][0].get("text") if event.get("choices") else None)
            if text:
                times.append(now)
            if "timings" in event:
                prompt_ms = event["timings"].get("prompt_ms")
            if event.get("done"):
                prompt_ms = event["prompt_eval_duration"] / 1e6
    cpu = (sum(server.cpu_times()[:2]) - cpu_before) if server else None
    ttft = (times[0] - started) * 1000 if times else float("nan")
    gaps = [(b - a) * 1000 for a, b in zip(times, times[1:], strict=False)]
    return {"ttft_ms": ttft, "gaps_ms": gaps, "tokens": len(times), "prompt_ms": prompt_ms, "server_cpu_s": cpu}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def summarize(results: list[dict[str, Any]]) -> dict[str, float]:
    gaps = [g for r in results for g in r["gaps_ms"]]
    ttfts = [r["ttft_ms"] for r in results]
    overheads = [r["ttft_ms"] - r["prompt_ms"] for r in results if r["prompt_ms"] is not None]
    cpu = [r["server_cpu_s"] for r in results if r["server_cpu_s"] is not None]
    return {
        "server_cpu_us_per_token": 1e6 * sum(cpu) / sum(r["tokens"] for r in results) if cpu else float("nan"),
        "itl_p50_ms": statistics.median(gaps), "itl_p95_ms": pct(gaps, 0.95), "itl_mean_ms": statistics.fmean(gaps),
        "ttft_p50_ms": statistics.median(ttfts), "prompt_p50_ms": statistics.median(
            [r["prompt_ms"] for r in results if r["prompt_ms"] is not None] or [float("nan")]),
        "overhead_p50_ms": statistics.median(overheads) if overheads else float("nan"),
        "tokens_mean": statistics.fmean(r["tokens"] for r in results),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="requests per target")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=0, help="0 = physical cores")
    parser.add_argument("--ctx", type=int, default=2048, help="context per slot")
    parser.add_argument("--parallel", type=int, default=4, help="slots on both servers")
    parser.add_argument("--flash-attention", choices=("default", "auto", "on", "off"), default="default",
                        help="on both servers (default: each server's own choice; Hearth's is measured here)")
    parser.add_argument("--hearth-arg", action="append", default=[], metavar="FLAG",
                        help="extra `hearth serve` flag, e.g. --hearth-arg=--prompt-cache-bytes=0 (repeatable)")
    parser.add_argument("--repeat-prompt", action="store_true", help="send the same prompt every time")
    parser.add_argument("--json", type=Path, help="write the raw summary here")
    parser.add_argument("--remote-runs", type=int, default=20,
                        help="chat streams for the remote-engine check (llama-server registered as a Hearth remote; "
                             "0 skips it)")
    args = parser.parse_args()

    from hearth.engine import physical_cores
    from hearth.store.bundled import require

    model_file = require()
    threads = args.threads or physical_cores()
    home = Path(tempfile.mkdtemp(prefix="hearth-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        llama_url, proc = start_llama_server(model_file, threads, args.ctx, args.parallel, args.flash_attention)
        procs.append(proc)
        hearth_url, proc = start_hearth(home, threads, args.ctx, args.parallel, args.flash_attention, args.hearth_arg)
        procs.append(proc)
        targets = {"llama-server": (llama_url, "smollm2"), "hearth-openai": (hearth_url, "smollm2:135m"),
                   "hearth-ollama": (hearth_url, "smollm2:135m")}
        results: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
        hearth_process = psutil.Process(procs[1].pid)
        servers = {"llama-server": None, "hearth-openai": hearth_process, "hearth-ollama": hearth_process}
        order = list(targets)
        with httpx.Client(timeout=300) as client:
            for name, (url, model) in targets.items():  # warm-up: load, first-touch the weights
                measure(client, name, url, model, f"Warm-up.\n{COUNTING}", 8)
            for run in range(args.runs):
                for name in order:
                    url, model = targets[name]
                    prompt = COUNTING if args.repeat_prompt else f"Run {run} of {name}.\n{COUNTING}"
                    results[name].append(measure(client, name, url, model, prompt, args.max_tokens,
                                                 servers[name]))
                order = order[1:] + order[:1]
            engine = client.get(hearth_url + "/api/ps").json()["models"][0].get("engine")
            relay = remote_check(client, home, llama_url, hearth_url, args) if args.remote_runs else None
        summary = {name: summarize(rows) for name, rows in results.items()}
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
    report(summary, args, threads, engine)
    if relay is not None:
        report_relay(relay)
    if args.json:
        args.json.write_text(json.dumps({"settings": vars(args) | {"threads": threads, "json": None},
                                         "cpu": cpu_model(), "hearth_engine": engine, "summary": summary,
                                         "remote_relay": relay}, indent=2, default=str))


def chat_stream(client: httpx.Client, url: str, model: str, prompt: str, max_tokens: int,
                **extra: Any) -> dict[str, Any]:
    """One streamed chat on `/v1/chat/completions`: TTFT, the gaps between content chunks, and the text."""
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
            "stream": True, "temperature": 0, "seed": 1, **extra}
    times: list[float] = []
    text = []
    started = time.perf_counter()
    with client.stream("POST", url + "/v1/chat/completions", json=body, headers={"Connection": "close"}) as response:
        response.raise_for_status()
        for event in _sse(response):
            piece = (event.get("choices") or [{}])[0].get("delta", {}).get("content")
            if piece:
                times.append(time.perf_counter())
                text.append(piece)
    gaps = [(b - a) * 1000 for a, b in zip(times, times[1:], strict=False)]
    return {"ttft_ms": (times[0] - started) * 1000 if times else float("nan"), "gaps_ms": gaps,
            "text": "".join(text)}


def remote_check(client: httpx.Client, home: Path, llama_url: str, hearth_url: str,
                 args: argparse.Namespace) -> dict[str, Any]:
    """llama-server registered as a remote model of the running Hearth (`hearth remote add`): the same chat
    streamed from llama-server directly and through Hearth, interleaved; what the relay adds per token."""
    env = {**os.environ, "HEARTH_HOME": str(home)}
    # llama-server offers the one model it loaded: registering without --model takes it
    subprocess.run([str(HEARTH), "remote", "add", "llama", llama_url], env=env, check=True, capture_output=True)
    targets = {"llama-server direct": (llama_url, "smollm2"), "hearth relaying it": (hearth_url, "llama")}
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
    for url, model in targets.values():
        chat_stream(client, url, model, "Warm-up.", 8)
    for run in range(args.remote_runs):  # a prompt of its own each time: neither is served from the cache
        for name in (list(targets) if run % 2 == 0 else list(reversed(targets))):
            url, model = targets[name]
            rows[name].append(chat_stream(client, url, model, f"Run {run} of {name}. {COUNTING}", args.max_tokens))
    same = 0
    for run in range(3):  # the same question both ways, each evaluated in full: the relay changes no token
        prompt = f"Check {run}: name three rivers."
        relayed = chat_stream(client, hearth_url, "llama", prompt, args.max_tokens)["text"]
        direct = chat_stream(client, llama_url, "smollm2", prompt, args.max_tokens, cache_prompt=False)["text"]
        same += relayed == direct
    out: dict[str, Any] = {"same_answers": same, "checks": 3, "runs": args.remote_runs}
    for name, results in rows.items():
        gaps = [g for r in results for g in r["gaps_ms"]]
        out[name] = {"itl_p50_ms": statistics.median(gaps), "itl_mean_ms": statistics.fmean(gaps),
                     "ttft_p50_ms": statistics.median(r["ttft_ms"] for r in results)}
    return out


def report_relay(relay: dict[str, Any]) -> None:
    direct, through = relay["llama-server direct"], relay["hearth relaying it"]
    print(f"\nremote engine check: llama-server registered as a Hearth remote, {relay['runs']} chat streams each, "
          f"{relay['same_answers']}/{relay['checks']} answers to the same question identical both ways")
    print("| path | ITL p50 (ms) | ITL mean (ms) | TTFT p50 (ms) |\n|---|---|---|---|")
    for name in ("llama-server direct", "hearth relaying it"):
        r = relay[name]
        print(f"| {name} | {r['itl_p50_ms']:.2f} | {r['itl_mean_ms']:.2f} | {r['ttft_p50_ms']:.1f} |")
    print(f"streaming overhead Hearth adds per token: {through['itl_p50_ms'] - direct['itl_p50_ms']:+.2f} ms at the "
          f"median (goal <= 1 ms), {through['itl_mean_ms'] - direct['itl_mean_ms']:+.2f} ms mean; TTFT "
          f"{through['ttft_p50_ms'] - direct['ttft_p50_ms']:+.1f} ms")


def report(summary: dict[str, dict[str, float]], args: argparse.Namespace, threads: int,
           engine: dict[str, Any] | None) -> None:
    print(f"CPU: {cpu_model()}")
    llama = "-fa auto (its default), -b 2048 -ub 512" if args.flash_attention == "default" else \
        f"-fa {args.flash_attention} -b 512 -ub 512"
    print(f"llama-server: -t {threads} {llama}; hearth: {engine}")
    print(f"model smollm2:135m Q4_1 · threads {threads} · ctx {args.ctx}/slot · {args.parallel} slots · "
          f"{args.runs} runs × {args.max_tokens} tokens, one client, streaming, "
          f"{'the same prompt every time' if args.repeat_prompt else 'a new prompt every time'}\n")
    print("| target | ITL p50 (ms) | ITL p95 (ms) | ITL mean (ms) | TTFT p50 (ms) | prompt eval p50 (ms) "
          "| TTFT − prompt eval p50 (ms) | server CPU per token (µs) | tokens |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, s in summary.items():
        print(f"| {name} | {s['itl_p50_ms']:.2f} | {s['itl_p95_ms']:.2f} | {s['itl_mean_ms']:.2f} | "
              f"{s['ttft_p50_ms']:.1f} | {s['prompt_p50_ms']:.1f} | {s['overhead_p50_ms']:.1f} | "
              f"{s['server_cpu_us_per_token']:.0f} | {s['tokens_mean']:.0f} |")
    base, hearth, ollama = summary["llama-server"], summary["hearth-openai"], summary["hearth-ollama"]
    print()
    print(f"Hearth /v1 ITL p50 vs llama-server: {100 * (hearth['itl_p50_ms'] / base['itl_p50_ms'] - 1):+.1f}% "
          f"(mean {100 * (hearth['itl_mean_ms'] / base['itl_mean_ms'] - 1):+.1f}%)")
    print(f"Hearth /api vs /v1 ITL p50: {100 * (ollama['itl_p50_ms'] / hearth['itl_p50_ms'] - 1):+.1f}% "
          f"(mean {100 * (ollama['itl_mean_ms'] / hearth['itl_mean_ms'] - 1):+.1f}%), TTFT p50: "
          f"{100 * (ollama['ttft_p50_ms'] / hearth['ttft_p50_ms'] - 1):+.1f}%")
    print(f"Hearth TTFT p50 − llama-server TTFT p50: {hearth['ttft_p50_ms'] - base['ttft_p50_ms']:+.1f} ms (/v1), "
          f"{ollama['ttft_p50_ms'] - base['ttft_p50_ms']:+.1f} ms (/api)")


if __name__ == "__main__":
    main()
