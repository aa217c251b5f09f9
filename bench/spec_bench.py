"""Speculative decoding (issue 18): Hearth with and without it, and llama-server with its n-gram spec types.

All servers run the bundled model from the same llama.cpp source (bench/build_llamacpp.sh) with the same
threads, flash attention, context per slot and 4 slots, and are driven through `/v1/chat/completions`
(streaming, greedy, no repeat penalty) by the same client code (bench/batch_bench.py). Workloads:

- `code`: rewrite a ~400-token Python file with one change (copy-heavy);
- `quote`: answer by quoting a given passage (copy-heavy);
- `chat`: free-form answers (speculation must not slow these);
- `4 streams`: code, chat, quote and chat at once: aggregate tokens/s.

Decode rate of one answer = (completion tokens - 1) / (time from its first content token to its end), the
same formula for every server. Each round runs every server once per workload, in an order that rotates
from round to round, so the machine's drift hits all alike; ratios are medians over rounds of per-round
ratios. Hearth's speculative answers are compared with its answers without speculation, token for token.

Usage: .venv/bin/python bench/spec_bench.py [--threads N] [--repeat R] [--flash-attention on|off]
       [--draft-max K] [--spec-types ngram-simple:small,ngram-map-k:small,ngram-mod:small,ngram-simple]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from batch_bench import LLAMA_SERVER, free_port, stream_chat, wait_ready
from benchlib import cpu_model

ROOT = Path(__file__).resolve().parents[1]
MODEL = "smollm2:135m"
CODE_FILE = ROOT / "src" / "hearth" / "engine" / "cache.py"
PASSAGE = (
    "The harbour town of Wren sits where the river meets the sea. Its lighthouse was built in 1861 from granite "
    "quarried two miles inland, and its lamp was first lit on the night of the spring equinox. For ninety years "
    "the keepers climbed one hundred and twelve steps each evening to trim the wick and wind the clockwork that "
    "turned the lens. In 1952 the lamp was electrified, and in 1987 the last keeper, Margaret Hale, handed the "
    "keys to the harbour board. Today the tower is a museum, and on clear nights its beam still reaches "
    "twenty-two nautical miles out to sea."
)


def workloads() -> dict[str, tuple[str, int]]:
    """Prompt and answer length of each single-stream workload."""
    code = CODE_FILE.read_text(encoding="utf-8")[:1600]
    return {
        "code": ("Here is a Python file:\n\n```python\n" + code + "\n```\n\nRewrite the whole file, unchanged except "
                 "that the class PromptCache is renamed to StateCache. Output only the code.", 448),
        "quote": ("Read this passage:\n\n" + PASSAGE + "\n\nQuote, word for word, the sentences of the passage "
                  "that tell what happened in 1952 and 1987, and then the last sentence.", 160),
        "chat": ("Write a short story about a fox who learns to fish.", 256),
    }


def start_hearth(threads: int, ctx: int, port: int, home: Path, fa: str, speculative: str,
                 draft_max: int) -> subprocess.Popen:
    env = dict(os.environ, HEARTH_HOME=str(home), HEARTH_NUM_THREADS=str(threads), HEARTH_FLASH_ATTENTION=fa,
               HEARTH_NUM_BATCH="512", HEARTH_SPECULATIVE=speculative, HEARTH_DRAFT_MAX=str(draft_max),
               HEARTH_KEEP_ALIVE="-1")
    hearth = Path(sys.executable).with_name("hearth")
    return subprocess.Popen([str(hearth), "serve", "--port", str(port), "--num-ctx", str(ctx), "--num-parallel", "4"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# llama-server's own sizes are for large models (ngram-simple: 12-token lookup, 48-token drafts; ngram-mod:
# 48–64-token drafts); on a 135M model and 2 cores verifying 48 tokens costs ~20 one-token steps, so each
# type also runs with Hearth's sizes (3-token lookup, at most 16 drafted)
SPEC_SIZES = {
    "ngram-simple": ["--spec-ngram-simple-size-n", "3", "--spec-ngram-simple-size-m", "16"],
    "ngram-map-k": ["--spec-ngram-map-k-size-n", "3", "--spec-ngram-map-k-size-m", "16"],
    "ngram-mod": ["--spec-ngram-mod-n-match", "3", "--spec-ngram-mod-n-min", "2", "--spec-ngram-mod-n-max", "16"],
}


def start_llama_server(model: Path, threads: int, ctx: int, port: int, fa: str, spec: str) -> subprocess.Popen:
    if not LLAMA_SERVER.exists():
        sys.exit(f"{LLAMA_SERVER} is missing: run bench/build_llamacpp.sh first")
    args = [str(LLAMA_SERVER), "-m", str(model), "--port", str(port), "-t", str(threads), "-tb", str(threads),
            "-c", str(ctx * 4), "--parallel", "4", "-b", "512", "-ub", "512", "-fa", fa, "--no-webui",
            "--log-disable", "--spec-type", spec.removesuffix(":small"),
            *(SPEC_SIZES[spec.removesuffix(":small")] if spec.endswith(":small") else [])]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def decode_rate(result: dict) -> float:
    """Tokens/s from the first content token to the end of the answer."""
    span = result["elapsed"] - result["ttft"]
    return (result["tokens"] - 1) / span if span > 0 and result["tokens"] > 1 else 0.0


def four_streams(url: str, items: list[tuple[str, int]]) -> tuple[float, list[str]]:
    """Aggregate tokens/s of the items answered at once, and their texts."""
    results: dict[int, dict] = {}

    def one(i: int) -> None:
        prompt, max_tokens = items[i]
        results[i] = stream_chat(url, MODEL, [{"role": "user", "content": prompt}], max_tokens)

    started = time.perf_counter()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(items))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return sum(r["tokens"] for r in results.values()) / wall, [results[i]["text"] for i in range(len(items))]


def run_round(urls: dict[str, str], order: list[str], work: dict[str, tuple[str, int]]) -> dict[str, dict]:
    """One round: every server answers every workload once."""
    out: dict[str, dict] = {name: {} for name in urls}
    items = [work["code"], work["chat"], work["quote"], ("Write a short poem about the autumn wind.", 256)]
    for kind, (prompt, max_tokens) in work.items():
        for name in order:
            result = stream_chat(urls[name], MODEL, [{"role": "user", "content": prompt}], max_tokens)
            out[name][kind] = decode_rate(result)
            out[name][kind + "_text"] = result["text"]
            out[name][kind + "_tokens"] = result["tokens"]
            print(f"  {name}: {kind} {out[name][kind]:.1f} tok/s ({result['tokens']} tokens)", flush=True)
    for name in order:
        out[name]["4 streams"], out[name]["4 streams_text"] = four_streams(urls[name], items)
    return out


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--ctx", type=int, default=2048, help="context per slot")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--flash-attention", choices=("on", "off"), default="on")
    parser.add_argument("--draft-max", type=int, default=16, help="Hearth's draft_max")
    parser.add_argument("--spec-types", default="ngram-simple:small,ngram-map-k:small,ngram-mod:small",
                        help="llama-server --spec-type values; ':small' adds Hearth's sizes (SPEC_SIZES)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from hearth.store.bundled import require

    model = require()
    work = workloads()
    homes = [Path(tempfile.mkdtemp(prefix="hearth-spec-bench-")) for _ in range(2)]
    ports: dict[str, int] = {"hearth off": free_port(), "hearth ngram": free_port()}
    procs = [start_hearth(args.threads, args.ctx, ports["hearth off"], homes[0], args.flash_attention, "off",
                          args.draft_max),
             start_hearth(args.threads, args.ctx, ports["hearth ngram"], homes[1], args.flash_attention, "ngram",
                          args.draft_max)]
    for spec in args.spec_types.split(","):
        ports["llama-server " + spec] = port = free_port()
        procs.append(start_llama_server(model, args.threads, args.ctx, port, args.flash_attention, spec))
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    rounds: list[dict[str, dict]] = []
    try:
        for url in urls.values():
            wait_ready(url)
            stream_chat(url, MODEL, [{"role": "user", "content": "Hello"}], 8)  # warm-up
        print(f"CPU: {cpu_model()}; threads {args.threads}; flash attention {args.flash_attention}; ctx/slot "
              f"{args.ctx}; 4 slots; greedy, repeat penalty 1.0; Hearth draft_max {args.draft_max} (adaptive); "
              f"llama-server --spec-type {args.spec_types} (:small = SPEC_SIZES); load {load_average()}", flush=True)
        names = list(urls)
        for r in range(args.repeat):
            order = names[r % len(names):] + names[:r % len(names)]
            res = run_round(urls, order, work)
            rounds.append(res)
            for name in names:
                print(f"round {r + 1} {name:>26}: " + " | ".join(
                    f"{k} {res[name][k]:6.1f}" for k in ("code", "quote", "chat", "4 streams")) +
                    f" tok/s (load {load_average()})", flush=True)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(30)
        for home in homes:
            shutil.rmtree(home, ignore_errors=True)
    report(rounds, list(urls))


def report(rounds: list[dict[str, dict]], names: list[str]) -> None:
    kinds = ("code", "quote", "chat", "4 streams")

    def ratio(a: str, b: str, kind: str) -> float:
        return statistics.median(r[a][kind] / r[b][kind] for r in rounds if r[b][kind] > 0)

    print("\nmedian tok/s over rounds:")
    for name in names:
        print(f"{name:>26}: " + " | ".join(f"{k} {statistics.median(r[name][k] for r in rounds):6.1f}" for k in kinds))
    servers = [n for n in names if n.startswith("llama-server")]
    print("\nHearth ngram / Hearth off (median of per-round ratios): " + " | ".join(
        f"{k} {ratio('hearth ngram', 'hearth off', k):.2f}x" for k in kinds))
    for kind in kinds:
        best = max(servers, key=lambda n: statistics.median(r[n][kind] for r in rounds))
        print(f"{kind}: Hearth ngram / {best} (the best llama-server here) = {ratio('hearth ngram', best, kind):.2f}x")
    same = sum(r["hearth ngram"][k + "_text"] == r["hearth off"][k + "_text"] for r in rounds for k in kinds)
    print(f"Hearth answers identical with and without speculation: {same} of {len(rounds) * len(kinds)} "
          "(4 streams: all four texts)")


if __name__ == "__main__":
    main()
