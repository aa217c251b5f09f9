"""Concurrent generation and prompt reuse: `hearth serve` against llama-server (`--parallel 4`).

Both servers run the bundled model with the same threads, context per slot and slots, built from the same
llama.cpp source (bench/build_llamacpp.sh). Both are driven through their OpenAI-compatible
`/v1/chat/completions` streaming route by the same client code. Three measurements:

1. aggregate: 4 concurrent streams (temperature 0, 128 tokens each): generated tokens / wall time,
   plus Hearth's single stream for reference;
2. multi-turn: a 10-turn conversation replayed turn by turn: time to first content token per turn;
3. interleave: three conversations advanced in turn for 10 rounds (each round a new user message after a
   48-token answer, like the replay): share of prompt tokens after the first round served from the
   cache (Hearth: usage.prompt_tokens_details.cached_tokens; llama-server: timings.cache_n), and share
   of what a perfect cache could serve (the previous turn's prompt and answer; the rest is the new
   message and its template tokens, which no cache can have seen).

By default each server runs with its own engine settings (`--flash-attention default`): llama-server's
flash attention "auto" and batch sizes, and what Hearth measured on this machine at its first load (the
warm-up, untimed); `--flash-attention off|on|auto` gives both the same. The 4-stream answers are checked
against each prompt's answer alone on the same server (greedy): "outputs equal to solo" counts those
that match token for token.

Usage: .venv/bin/python bench/batch_bench.py [--threads N] [--repeat R] [--flash-attention default|off|on|auto]
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
from benchlib import cpu_model

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
    env = dict(os.environ, HEARTH_HOME=str(home))
    if fa != "default":  # else Hearth's own choice, measured here
        env.update(HEARTH_NUM_THREADS=str(threads), HEARTH_FLASH_ATTENTION=fa)
    hearth = Path(sys.executable).with_name("hearth")
    return subprocess.Popen([str(hearth), "serve", "--port", str(port), "--num-ctx", str(ctx), "--num-parallel", "4"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_llama_server(model: Path, threads: int, ctx: int, port: int, fa: str) -> subprocess.Popen:
    if not LLAMA_SERVER.exists():
        sys.exit(f"{LLAMA_SERVER} is missing: run bench/build_llamacpp.sh first")
    tuning = [] if fa == "default" else ["-b", "512", "-ub", "512", "-fa", fa]
    args = [str(LLAMA_SERVER), "-m", str(model), "--port", str(port), "-t", str(threads), "-tb", str(threads),
            "-c", str(ctx * 4), "--parallel", "4", "--no-webui", "--log-disable", *tuning]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stream_chat(url: str, model: str, messages: list[dict], max_tokens: int) -> dict:
    """One streamed chat: text, completion tokens, TTFT, cached prompt tokens, prompt tokens."""
    # the same sampling on both: greedy, no repeat penalty (Hearth's default is Ollama's 1.1, llama-server's 1.0)
    body = {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": 0, "seed": 1,
            "repeat_penalty": 1.0,
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


def aggregate(url: str, model: str, n: int, max_tokens: int, solo: dict[int, str] | None = None) -> float:
    """Generated tokens/s of `n` concurrent streams; counts answers equal to `solo` (prompt -> text) in SAME."""
    results: list[dict] = []

    def one(i: int) -> None:
        result = stream_chat(url, model, [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}], max_tokens)
        result["same"] = solo is not None and solo.get(i % len(PROMPTS)) == result["text"]
        results.append(result)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    SAME.append((sum(bool(r["same"]) for r in results), len(results)))
    return sum(r["tokens"] for r in results) / wall


SAME: list[tuple[int, int]] = []  # (answers equal to their solo run, answers), per 4-stream measurement


def solo_answers(url: str, model: str, max_tokens: int) -> dict[int, str]:
    """Each prompt's answer alone on the server: what the concurrent answers should equal."""
    return {i: stream_chat(url, model, [{"role": "user", "content": p}], max_tokens)["text"]
            for i, p in enumerate(PROMPTS)}


def multi_turn(url: str, model: str, session: int, turns: int = 10) -> list[dict]:
    # the session number makes every replay a new conversation: a repeat would be served whole from the
    # cache of the previous one
    messages = [{"role": "system", "content": f"Session {session}. You are a helpful assistant."},
                {"role": "user", "content": "Tell me about the history of tea."}]
    results = []
    for turn in range(turns):
        r = stream_chat(url, model, messages, 48)
        results.append(r)
        messages += [{"role": "assistant", "content": r["text"]},
                     {"role": "user", "content": FOLLOW_UPS[turn % len(FOLLOW_UPS)]}]
    return results


def interleave(url: str, model: str, rounds: int = 10) -> tuple[float, float]:
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


def run_round(url: str, model: str, session: int, solo: dict[int, str]) -> dict:
    replay = multi_turn(url, model, session)
    SAME.clear()
    four = aggregate(url, model, 4, 128, solo)
    same = SAME[-1]
    return {"aggregate": four, "single": aggregate(url, model, 1, 128), "same": same[0], "answers": same[1],
            "turn2": replay[1]["ttft"], "turn10": replay[9]["ttft"],
            "new2": replay[1]["prompt"] - replay[1]["cached"], "ctx2": replay[1]["prompt"],
            "new10": replay[9]["prompt"] - replay[9]["cached"], "ctx10": replay[9]["prompt"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--ctx", type=int, default=2048, help="context per slot")
    parser.add_argument("--repeat", type=int, default=4, help="rounds; each runs both servers, in alternating order")
    parser.add_argument("--rounds", type=int, default=10, help="rounds of the interleave test")
    parser.add_argument("--flash-attention", choices=("default", "auto", "on", "off"), default="default",
                        help="for both servers (default: each its own; Hearth's is measured here)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from hearth.store.bundled import require

    model = require()
    home = Path(tempfile.mkdtemp(prefix="hearth-bench-"))
    ports = {"llama-server": free_port(), "hearth": free_port()}
    procs = [start_llama_server(model, args.threads, args.ctx, ports["llama-server"], args.flash_attention),
             start_hearth(model, args.threads, args.ctx, ports["hearth"], home, args.flash_attention)]
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    rounds: dict[str, list[dict]] = {name: [] for name in urls}
    cache: dict[str, tuple[float, float]] = {}
    solo: dict[str, dict[int, str]] = {}
    try:
        for name, url in urls.items():
            wait_ready(url)
            stream_chat(url, "smollm2:135m", [{"role": "user", "content": "Hello"}], 8)  # warm-up
            solo[name] = solo_answers(url, "smollm2:135m", 128)
        engine = httpx.get(urls["hearth"] + "/api/ps").json()["models"][0].get("engine")
        print(f"CPU: {cpu_model()}; threads {args.threads}; flash attention {args.flash_attention}; "
              f"hearth engine: {engine}")
        # both servers stay up (the idle one sleeps); each round runs them back to back, llama-server first
        # in even rounds and Hearth first in odd ones, so the machine's drift hits both alike
        for r in range(args.repeat):
            order = ["llama-server", "hearth"] if r % 2 == 0 else ["hearth", "llama-server"]
            for name in order:
                res = run_round(urls[name], "smollm2:135m", r, solo[name])
                rounds[name].append(res)
                print(f"round {r + 1} {name:>12}: 4 streams {res['aggregate']:6.1f} tok/s, 1 stream "
                      f"{res['single']:6.1f} tok/s ({res['same']}/{res['answers']} equal to solo), "
                      f"TTFT turn 2 {res['turn2'] * 1000:6.1f} ms ({res['new2']} new of "
                      f"{res['ctx2']}), turn 10 {res['turn10'] * 1000:6.1f} ms ({res['new10']} new of {res['ctx10']})",
                      flush=True)
        for name, url in urls.items():
            cache[name] = interleave(url, "smollm2:135m", args.rounds)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(30)
        shutil.rmtree(home, ignore_errors=True)

    def med(name: str, key: str) -> float:
        return statistics.median(x[key] for x in rounds[name])

    def pair(key: str) -> float:  # median over rounds of Hearth / llama-server
        return statistics.median(h[key] / s[key] for h, s in zip(rounds["hearth"], rounds["llama-server"], strict=True))

    print()
    for name in urls:
        print(f"{name:>12}: 4 streams {med(name, 'aggregate'):6.1f} tok/s | 1 stream {med(name, 'single'):6.1f} tok/s"
              f" | TTFT turn 2 {med(name, 'turn2') * 1000:6.1f} ms, turn 10 {med(name, 'turn10') * 1000:6.1f} ms"
              f" | interleaved cache ratio {cache[name][0]:.1%} ({cache[name][1]:.1%} of what the last turn left)")
    h = rounds["hearth"]
    turn_ratio = statistics.median(x["turn10"] / x["turn2"] for x in h)
    ls_turn_ratio = statistics.median(x["turn10"] / x["turn2"] for x in rounds["llama-server"])
    print(f"\nmedians over {args.repeat} rounds of per-round ratios, flash attention {args.flash_attention}:")
    print(f"aggregate 4 streams: {pair('aggregate'):.1%} of llama-server (goal >= 100%); "
          f"{statistics.median(x['aggregate'] / x['single'] for x in h):.2f}x Hearth's single stream (goal > 1); "
          f"single stream {pair('single'):.1%} of llama-server")
    for name in urls:
        same = sum(x["same"] for x in rounds[name])
        print(f"{name}: {same} of {sum(x['answers'] for x in rounds[name])} concurrent answers equal to their solo run")
    print(f"turn-10 TTFT / turn-2 TTFT: {turn_ratio:.2f} (goal <= 1.5; llama-server {ls_turn_ratio:.2f}); "
          f"turn-10 TTFT vs llama-server: {pair('turn10'):.2f}x (goal <= 1.2)")
    print(f"interleaved cached-token ratio: {cache['hearth'][0]:.1%} (goal >= 90%); llama-server "
          f"{cache['llama-server'][0]:.1%}; of the reusable tokens: Hearth {cache['hearth'][1]:.1%}, "
          f"llama-server {cache['llama-server'][1]:.1%}")


if __name__ == "__main__":
    main()
