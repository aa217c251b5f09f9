"""Retrieval quality and speed for `hearth docs`, on a corpus built from the Python standard library.

Corpus. Every module, class and function docstring of the standard library's own source (read with `ast`,
never imported) of at least 30 words becomes one page: a Markdown file `# qualified.name` plus the docstring.
Sorted by path and name and cut at `--pages` (default 1,200), so every run sees the same corpus.

Questions. For `--questions` pages (seeded sample) whose first sentence has at least 6 words and is unique
in the corpus, the question is that sentence with the object's own name removed and a third of its remaining
words dropped (seeded), so it neither quotes the page nor names it. The answer is that page: a question is
answered at rank k if the k-th passage retrieved comes from it. Recall@5 and MRR (reciprocal rank of the
first right passage, 0 past rank 50) for BM25 alone, dense alone and hybrid (reciprocal-rank fusion). No
test or setting is tuned on this set at run time. It favours words shared with the page (the question is
cut from it), so BM25 is strong here; paraphrased questions would favour the dense side.

Speed. Indexing pages/s with no embedding model and with all-MiniLM-L6-v2 (f16, `.build/models/`, made by
`make setup`); re-adding the unchanged corpus against the first indexing; hybrid query latency (the query
embedded by the real model, BM25, numpy cosine over every vector, fusion, fetching the passages) p50/p95
over a collection of 10,000 passages. For that one collection the passages are real docstring text but
their vectors are random unit vectors: the time of an exact search does not depend on the values, and
embedding 10,000 passages on a shared 2-core machine would take most of an hour. The numpy brute-force
search alone is also timed at 10,000 and 100,000 vectors.

    .venv/bin/python bench/retrieval_bench.py [--pages 1200] [--questions 200] [--out bench/results/X.json]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import re
import statistics
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import Interference, cpu_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EMBEDDER = ROOT / ".build" / "models" / "all-MiniLM-L6-v2.f16.gguf"
SKIP_DIRS = {"test", "tests", "idlelib", "tkinter", "turtledemo", "lib2to3", "site-packages", "ensurepip",
             "__pycache__", "pydoc_data", "config-3.11-x86_64-linux-gnu"}
SENTENCE = re.compile(r"^(.+?[.!?])(\s|$)", re.S)


def docstrings(limit: int) -> list[tuple[str, str]]:
    """(qualified name, docstring) for the standard library, in a stable order."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    found: list[tuple[str, str]] = []
    for path in sorted(stdlib.rglob("*.py")):
        if SKIP_DIRS & set(path.relative_to(stdlib).parts):
            continue
        module = ".".join(path.relative_to(stdlib).with_suffix("").parts).removesuffix(".__init__")
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        found += _walk(tree, module)
        if len(found) >= limit * 5:
            break
    pages = [(name, doc) for name, doc in found if len(doc.split()) >= 30]
    return pages[:limit]


def _walk(node: ast.AST, prefix: str) -> list[tuple[str, str]]:
    out = []
    doc = ast.get_docstring(node, clean=True) if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                                                   ast.AsyncFunctionDef)) else None
    if doc:
        out.append((prefix, doc))
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            out += _walk(child, f"{prefix}.{child.name}")
    return out


def questions(pages: list[tuple[str, str]], count: int, seed: int = 15) -> list[tuple[str, int]]:
    """(question, index of the answer page)."""
    firsts: dict[str, list[int]] = {}
    for i, (_, doc) in enumerate(pages):
        match = SENTENCE.match(" ".join(doc.split()))
        if match and len(match.group(1).split()) >= 6:
            firsts.setdefault(match.group(1), []).append(i)
    unique = [(sentence, idx[0]) for sentence, idx in firsts.items() if len(idx) == 1]
    rng = random.Random(seed)
    rng.shuffle(unique)
    out = []
    for sentence, index in unique[:count]:
        name = pages[index][0].split(".")[-1].lower()
        words = [w for w in sentence.split() if name not in w.lower()]
        kept = [w for w in words if rng.random() > 1 / 3] or words
        out.append((" ".join(kept).rstrip(".") + "?", index))
    return out


def dev_questions(pages: list[tuple[str, str]], count: int, test: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """A development set: questions made the same way from other seeds, about pages the benchmark's own
    questions do not ask about. Fusion rules are tried on this set, never on the benchmark's."""
    taken = {index for _, index in test}
    out: list[tuple[str, int]] = []
    for seed in (101, 202, 303):
        for question, index in questions(pages, 2 * count, seed=seed):
            if index not in taken:
                taken.add(index)
                out.append((question, index))
    return out[:count]


def write_corpus(folder: Path, pages: list[tuple[str, str]]) -> list[Path]:
    paths = []
    for i, (name, doc) in enumerate(pages):
        path = folder / f"{i:05}-{name[:80]}.md"
        path.write_text(f"# {name}\n\n{doc}\n", encoding="utf-8")
        paths.append(path.resolve())
    return paths


def quality(service, collection: str, qs: list[tuple[str, int]], paths: list[Path]) -> dict[str, dict[str, float]]:
    """Recall@5 and MRR per retrieval mode."""
    results = {}
    for mode in ("bm25", "dense", "hybrid"):
        hits, rr = 0, 0.0
        for question, answer in qs:
            found = service.documents.search(collection, question, limit=50, mode=mode).passages
            ranks = [r for r, p in enumerate(found, 1) if p.path == str(paths[answer])]
            if ranks and ranks[0] <= 5:
                hits += 1
            rr += 1 / ranks[0] if ranks else 0.0
        results[mode] = {"recall@5": round(hits / len(qs), 3), "mrr": round(rr / len(qs), 3)}
        print(f"  {mode:>6}: recall@5 {results[mode]['recall@5']:.3f}  MRR {results[mode]['mrr']:.3f}", flush=True)
    return results


def timed_add(service, collection: str, folder: Path) -> tuple[float, object]:
    start = time.perf_counter()
    report = service.documents.add(collection, [folder])
    return time.perf_counter() - start, report


def latency(service, embedder_digest: str, queries: list[str], target: int = 10_000) -> dict[str, float]:
    """Hybrid query latency over a collection of `target` passages (random vectors, real text)."""
    from hearth.documents import Index
    from hearth.documents.db import NewChunk

    texts = [doc for _, doc in docstrings(target * 2)]
    chunks = [" ".join(t.split()[:150]) for t in texts]
    while len(chunks) < target:
        chunks += chunks[: target - len(chunks)]
    rng = np.random.default_rng(15)
    vectors = rng.standard_normal((target, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = Index(service.documents.path)
    cid = index.collection_id("latency", create=True)
    for start in range(0, target, 100):  # 100 "files" of 100 passages
        batch = [NewChunk(i, None, chunks[start + i], vectors[start + i].tobytes()) for i in range(100)]
        index.put_file(cid, f"/latency/{start}.txt", "text", "0" * 64, 0, 0, None, embedder_digest, batch)
    index.close()
    service.documents.search("latency", "warm up the cache")  # loads the vectors once, as a server would
    times = []
    for query in queries:
        t0 = time.perf_counter()
        service.documents.search("latency", query, limit=8)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    return {"chunks": target, "queries": len(times), "p50_ms": round(statistics.median(times), 1),
            "p95_ms": round(p95, 1)}


def numpy_search_ms(n: int, dims: int = 384, repeats: int = 50) -> float:
    rng = np.random.default_rng(1)
    matrix = rng.standard_normal((n, dims)).astype(np.float32)
    query = rng.standard_normal(dims).astype(np.float32)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        scores = matrix @ query
        top = np.argpartition(-scores, 49)[:50]
        top[np.argsort(-scores[top])]
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=1200)
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--threads", type=int, default=0,
                        help="num_threads for the embedding model (0: Hearth's default, physical cores)")
    parser.add_argument("--dev", action="store_true",
                        help="score the development set (other seeds, other pages) instead of the benchmark's")
    args = parser.parse_args()
    if not EMBEDDER.is_file():
        sys.exit(f"{EMBEDDER} is missing: run `make setup` (scripts/build-embedder.sh) first")
    os.environ["HEARTH_TUNE"] = "0"
    from hearth.config import Settings
    from hearth.service import Hearth
    from hearth.store import ModelStore

    pages = docstrings(args.pages)
    qs = dev_questions(pages, 300, questions(pages, args.questions)) if args.dev else questions(pages, args.questions)
    print(f"CPU: {cpu_model()} ({os.cpu_count()} logical CPUs); {len(pages)} pages, {len(qs)} questions", flush=True)
    result: dict[str, object] = {"cpu": cpu_model(), "cpus": os.cpu_count(), "pages": len(pages),
                                 "questions": len(qs), "question_set": "development" if args.dev else "benchmark",
                                 "embedding_threads": args.threads}
    with tempfile.TemporaryDirectory() as tmp:
        home, folder = Path(tmp) / "home", Path(tmp) / "corpus"
        folder.mkdir()
        paths = write_corpus(folder, pages)
        os.environ["HEARTH_HOME"] = str(home)
        interference = Interference()
        plain = Hearth(Settings(embedding_model="none", tune=False, num_parallel=1), store=ModelStore(home))
        seconds, report = timed_add(plain, "plain", folder)
        plain.close()
        result["bm25_only"] = {"seconds": round(seconds, 2), "pages_per_s": round(len(pages) / seconds, 1),
                               "passages": report.chunks}
        print(f"  indexing without embeddings: {seconds:.1f} s, {len(pages) / seconds:.0f} pages/s", flush=True)
        service = Hearth(Settings(tune=False, num_parallel=1, num_threads=args.threads), store=ModelStore(home))
        manifest = service.import_file(EMBEDDER, "all-minilm")
        service.embed("all-minilm", ["load the model before timing"])
        result["engine"] = service.engine_settings("all-minilm")[0].describe()
        print(f"  embedding model engine settings: {result['engine']}", flush=True)
        seconds, report = timed_add(service, "stdlib", folder)
        result["with_embeddings"] = {"seconds": round(seconds, 2), "pages_per_s": round(len(pages) / seconds, 2),
                                     "passages": report.chunks}
        print(f"  indexing with all-MiniLM-L6-v2: {seconds:.1f} s, {len(pages) / seconds:.1f} pages/s "
              f"({report.chunks} passages)", flush=True)
        again, report = timed_add(service, "stdlib", folder)
        result["re_add_unchanged"] = {"seconds": round(again, 3), "percent_of_first": round(100 * again / seconds, 2),
                                      "unchanged": len(report.unchanged)}
        print(f"  re-adding unchanged: {again:.2f} s ({100 * again / seconds:.2f} % of the first)", flush=True)
        result["quality"] = quality(service, "stdlib", qs, paths)
        result["latency_hybrid"] = latency(service, manifest.digest, [q for q, _ in qs[:100]])
        print(f"  hybrid query on 10,000 passages: p50 {result['latency_hybrid']['p50_ms']} ms, "
              f"p95 {result['latency_hybrid']['p95_ms']} ms", flush=True)
        result["numpy_exact_search_ms"] = searched = {str(n): numpy_search_ms(n) for n in (10_000, 100_000)}
        print(f"  numpy exact search alone: {searched}", flush=True)
        foreign, steal = interference.percent()
        result["other_processes_cpu_percent"] = round(foreign, 1)
        print(f"  other processes used {foreign:.0f} % of the CPUs meanwhile (steal {steal:.0f} %)", flush=True)
        service.close()
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
