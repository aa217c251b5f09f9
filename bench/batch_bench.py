"""Concurrent generation and prompt reuse: `hearth serve` against llama-server (`--parallel 4`).

Both servers run the bundled model with the same threads, context per slot and slots, built from the same
llama.cpp source (bench/build_llamacpp.sh). Both are driven through their OpenAI-compatible
`/v1/chat/completions` streaming route by the same client code. Three measurements:

1. aggregate: 4 concurrent streams (temperature 0, 128 tokens each): generated tokens / wall time,
   plus Hearth's single stream for reference;
2. multi-turn: a 10-turn conversation replayed turn by turn: time to first content token per turn;
3. interleave: three conversations advanced in turn for 4 rounds: share of prompt tokens served from
   the cache (Hearth: usage.prompt_tokens_details.cached_tokens; llama-server: timings.cache_n).

Usage: .venv/bin/python bench/batch_bench.py [--threads N] [--repeat R]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
LLAMA_SERVER = ROOT / ".build" / "llamacpp" / "bin" / "llama-server"
PROMPTS = ["Write a story about a lighthouse keeper.", "Explain how bread is made, step by step.",
           "Describe a journey across the desert.", "Write a letter to a friend about autumn."]
TOPICS = ["the ocean", "mountains", "old cities"]
FOLLOW_UPS = ["Tell me more.", "Why is that?", "Give an example.", "What else?", "Summarise that.",
              "Add a detail.", "And then?", "Explain simply.", "One more fact?"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not become ready")


def start_hearth(model: Path, threads: int, ctx: int, port: int, home: Path, fa: str) -> subprocess.Popen:
    env = dict(os.environ, HEARTH_HOME=str(home), HEARTH_NUM_THREADS=str(threads), HEARTH_FLASH_ATTENTION=fa)
    hearth = Path(sys.executable).with_name("hearth")
    return subprocess.Popen([str(hearth), "serve", "--port", str(port), "--num-ctx", str(ctx), "--num-parallel", "4"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_llama_server(model: Path, threads: int, ctx: int, port: int, fa: str) -> subprocess.Popen:
    if not LLAMA_SERVER.exists():
        sys.exit(f"{LLAMA_SERVER} is missing: run bench/build_llamacpp.sh first")
    args = [str(LLAMA_SERVER), "-m", str(model), "--port", str(port), "-t", str(threads), "-tb", str(threads),
            "-c", str(ctx * 4), "--parallel", "4", "-b", "512", "-ub", "512", "--no-webui", "--log-disable",
            "-fa", fa]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stream_chat(url: str, model: str, messages: list[dict], max_tokens: int) -> dict:
    """One streamed chat: text, completion tokens, TTFT, cached prompt tokens, prompt tokens."""
    body = {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": 0, "seed": 1,
            "stream": True, "stream_options": {"include_usage": True}}
    start = time.perf_counter()
    ttft = None
    text = []
    usage: dict = {}
    timings: dict = {}
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=300) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            for choice in chunk.get("choices") or []:
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    ttft = ttft if ttft is not None else time.perf_counter() - start
                    text.append(piece)
            usage = chunk.get("usage") or usage
            timings = chunk.get("timings") or timings
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    if cached is None and timings:
        cached = timings.get("cache_n", 0)
    prompt = usage.get("prompt_tokens") or (timings.get("prompt_n", 0) + timings.get("cache_n", 0))
    return {"text": "".join(text), "tokens": usage.get("completion_tokens", 0), "ttft": ttft or 0.0,
            "cached": cached or 0, "prompt": prompt, "elapsed": time.perf_counter() - start}


def aggregate(url: str, model: str, n: int, max_tokens: int) -> float:
    results: list[dict] = []

    def one(i: int) -> None:
        results.append(stream_chat(url, model, [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}], max_tokens))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    return sum(r["tokens"] for r in results) / wall


def multi_turn(url: str, model: str, turns: int = 10) -> list[dict]:
    messages = [{"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "Tell me about the history of tea."}]
    results = []
    for turn in range(turns):
        r = stream_chat(url, model, messages, 48)
        results.append(r)
        messages += [{"role": "assistant", "content": r["text"]},
                     {"role": "user", "content": FOLLOW_UPS[turn % len(FOLLOW_UPS)]}]
    return results


def interleave(url: str, model: str, rounds: int = 4) -> tuple[float, float]:
    """Cached share of all prompt tokens after the first round, and of the tokens the previous turn left
    in the KV cache (its prompt and answer: what a perfect cache could serve)."""
    convs = [[{"role": "system", "content": f"You are an expert on {t}."},
              {"role": "user", "content": f"Tell me about {t}."}] for t in TOPICS]
    last: list[dict] = [{} for _ in convs]
    cached = prompt = reusable = 0
    for r in range(rounds):
        for i, conv in enumerate(convs):
            result = stream_chat(url, model, conv, 48)
            if r > 0:
                cached += result["cached"]
                prompt += result["prompt"]
                reusable += min(result["prompt"], last[i]["prompt"] + last[i]["tokens"])
            last[i] = result
            conv += [{"role": "assistant", "content": result["text"]},
                     {"role": "user", "content": FOLLOW_UPS[r % len(FOLLOW_UPS)]}]
    return (cached / prompt if prompt else 0.0), (cached / reusable if reusable else 0.0)


def measure(name: str, url: str, model: str, repeat: int) -> dict:
    stream_chat(url, model, [{"role": "user", "content": "Hello"}], 8)  # warm-up
    agg = statistics.median(aggregate(url, model, 4, 128) for _ in range(repeat))
    single = statistics.median(aggregate(url, model, 1, 128) for _ in range(repeat))
    replays = [multi_turn(url, model) for _ in range(repeat)]
    turn2 = statistics.median(t[1]["ttft"] for t in replays)
    turn10 = statistics.median(t[9]["ttft"] for t in replays)
    new2, new10 = (replays[0][i]["prompt"] - replays[0][i]["cached"] for i in (1, 9))
    ctx2, ctx10 = (replays[0][i]["prompt"] for i in (1, 9))
    ratio, reuse = interleave(url, model)
    print(f"{name:>12}: 4 streams {agg:7.1f} tok/s | 1 stream {single:7.1f} tok/s | TTFT turn 2 "
          f"{turn2 * 1000:6.1f} ms ({new2} new of {ctx2}), turn 10 {turn10 * 1000:6.1f} ms ({new10} new of {ctx10})"
          f" | interleaved cache ratio {ratio:.1%} ({reuse:.1%} of what the last turn left)", flush=True)
    return {"aggregate": agg, "single": single, "turn2": turn2, "turn10": turn10, "cache_ratio": ratio,
            "cache_reuse": reuse}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--ctx", type=int, default=2048, help="context per slot")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--flash-attention", choices=("auto", "on", "off"), default="auto",
                        help="for both servers (Hearth's flash_attention setting, llama-server's -fa)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from hearth.store.bundled import require

    model = require()
    home = Path(tempfile.mkdtemp(prefix="hearth-bench-"))
    results = {}
    for name in ("llama-server", "hearth"):
        port = free_port()
        proc = (start_llama_server(model, args.threads, args.ctx, port, args.flash_attention) if name == "llama-server"
                else start_hearth(model, args.threads, args.ctx, port, home, args.flash_attention))
        try:
            url = f"http://127.0.0.1:{port}"
            wait_ready(url)
            results[name] = measure(name, url, "smollm2:135m", args.repeat)
        finally:
            proc.terminate()
            proc.wait(30)
    shutil.rmtree(home, ignore_errors=True)
    h, s = results["hearth"], results["llama-server"]
    print()
    print(f"aggregate 4 streams: {h['aggregate'] / s['aggregate']:.1%} of llama-server (goal >= 90%); "
          f"{h['aggregate'] / h['single']:.2f}x Hearth's single stream (goal > 1)")
    print(f"turn-10 TTFT / turn-2 TTFT: {h['turn10'] / h['turn2']:.2f} (goal <= 1.5); "
          f"turn-10 TTFT vs llama-server: {h['turn10'] / s['turn10']:.2f}x (goal <= 1.2)")
    print(f"interleaved cached-token ratio: {h['cache_ratio']:.1%} (goal >= 90%); "
          f"llama-server {s['cache_ratio']:.1%}; of the reusable tokens: Hearth {h['cache_reuse']:.1%}, "
          f"llama-server {s['cache_reuse']:.1%}")


if __name__ == "__main__":
    main()
