"""`hearth search`: GGUF repositories on the hub, with their quantizations, sizes and a fit label for each.

One search request, then one listing request per result (four at a time) for file sizes. The labels are
estimated from the file sizes (weights) and a typical architecture for that many parameters (context cache
at the default context): reading every header would cost a request per file. `hearth fit hf.co/...` reads
the real header.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from hearth.errors import HearthError
from hearth.fit.machine import Machine
from hearth.fit.quants import bits_per_weight, default_quant
from hearth.fit.report import Verdict, label
from hearth.fit.shape import ModelShape
from hearth.hub.client import endpoint, hf, listing, translate_errors
from hearth.hub.refs import check_repo_id

MAX_RESULTS = 50
ASSUMED_CONTEXT = 4096


@dataclass(frozen=True)
class SearchResult:
    """One repository: popularity, its quantizations (best first; a split model's size is all its parts') with
    sizes and fit labels."""

    repo_id: str
    downloads: int | None
    likes: int | None
    sizes: dict[str, int] = field(default_factory=dict)
    labels: dict[str, Verdict] = field(default_factory=dict)
    default: str | None = None
    best: str | None = None
    problem: str | None = None

    def to_dict(self) -> dict[str, object]:
        """For `hearth search --json`."""
        return {"repo": self.repo_id, "name": f"hf.co/{self.repo_id}", "downloads": self.downloads,
                "likes": self.likes, "default_quantization": self.default, "best_fit": self.best,
                "quantizations": [{"quantization": q, "size": s, "fit": self.labels.get(q)}
                                  for q, s in self.sizes.items()],
                "problem": self.problem}


def search(query: str, machine: Machine, budget: int, *, limit: int = 10, n_seq: int = 1) -> list[SearchResult]:
    """GGUF repositories matching `query`, most downloaded first, each with its quantizations labelled."""
    limit = max(1, min(limit, MAX_RESULTS))
    with translate_errors(f"a search for {query!r}"):
        found = list(hf().HfApi(endpoint=endpoint()).list_models(
            filter="gguf", search=query or None, sort="downloads", limit=limit))
    repos = []
    for model in found:
        try:
            repos.append((check_repo_id(model.id), model.downloads, model.likes))
        except HearthError:  # a malformed id in the results: leave it out
            continue
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda r: _describe(*r, machine, budget, n_seq), repos))


def _describe(repo_id: str, downloads: int | None, likes: int | None, machine: Machine, budget: int,
              n_seq: int) -> SearchResult:
    try:
        files = listing(repo_id).quants()
    except HearthError as err:
        return SearchResult(repo_id, downloads, likes, problem=err.message)
    sizes = {q: f.size for q, f in files.items()}
    labels = {q: label(_shape_from_size(q, size), machine, budget, n_seq) for q, size in sizes.items()}
    best = next((q for q in sizes if labels[q] == "fits" and (bits_per_weight(q) or 0) <= 8.5), None)
    problem = None if sizes else "no complete GGUF models"
    return SearchResult(repo_id, downloads, likes, sizes, labels, default_quant(list(sizes)), best, problem)


def _shape_from_size(quant: str, size: int) -> ModelShape:
    """A typical model whose `quant` file is `size` bytes (parameters from the bits per weight)."""
    params = int(size * 8 / (bits_per_weight(quant) or 8.0))
    return ModelShape.from_catalog({"parameters": params, "context_length": ASSUMED_CONTEXT}, quant, size)
