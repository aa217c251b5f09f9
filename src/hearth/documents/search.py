"""Hybrid retrieval: BM25 (SQLite FTS5) and dense vectors (numpy), fused by reciprocal rank.

Reciprocal-rank fusion (Cormack et al., 2009) adds weight/(K + rank) over the lists a passage appears in: it
needs no score calibration between BM25 and cosine similarity, and a passage high in both lists wins. The
dense list's weight follows the question (`dense_weight`): low when BM25's best passage already holds the
question's words, high when it does not. With no vectors (no embedding model), the BM25 list is the answer.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hearth.documents.db import Index

if TYPE_CHECKING:  # numpy is imported where vectors are handled: most commands never touch them
    import numpy as np

RRF_K = 60
CANDIDATES = 50  # how deep each list is read before fusing
_WORD = re.compile(r"\w+", re.UNICODE)
STOPWORDS = frozenset("""a an and are as at be but by can do does for from has have how i if in into is it its
me my no not of on or so such that the their then there these they this to was were what when where which who
why will with you your""".split())


@dataclass(frozen=True)
class Passage:
    """A retrieved passage: where it is, its text, its fused score and its rank in each list (None: absent)."""

    chunk_id: int
    path: str
    page: int | None
    text: str
    score: float
    bm25_rank: int | None = None
    dense_rank: int | None = None

    @property
    def where(self) -> str:
        """`path`, or `path, page N`."""
        return self.path if self.page is None else f"{self.path}, page {self.page}"


def query_terms(query: str) -> list[str]:
    """The words BM25 searches for: the query's content words (all its words if it has only stopwords)."""
    words = [w for w in _WORD.findall(query.lower()) if w not in STOPWORDS] or _WORD.findall(query.lower())
    return list(dict.fromkeys(words))[:64]


def match_expression(query: str) -> str | None:
    """An FTS5 MATCH expression for free text: its words OR-ed, each quoted (no FTS5 syntax gets through)."""
    return " OR ".join(f'"{w}"' for w in query_terms(query)) or None


def bm25_ranking(index: Index, collection: int, query: str, limit: int = CANDIDATES) -> list[int]:
    """Chunk ids by BM25, best first."""
    match = match_expression(query)
    return [] if match is None else [cid for cid, _ in index.bm25(collection, match, limit)]


def dense_ranking(index: Index, collection: int, embed_model: str, query_vector: np.ndarray,
                  limit: int = CANDIDATES) -> list[int]:
    """Chunk ids by cosine similarity to `query_vector` (unit length), best first."""
    import numpy as np

    ids, matrix = index.vectors(collection, embed_model)
    if not len(ids) or matrix.shape[1] != query_vector.shape[0]:
        return []
    scores = matrix @ query_vector.astype(np.float32)
    k = min(limit, len(ids))
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top])]
    return [int(ids[i]) for i in top]


def fuse(rankings: list[list[int]], k: int = RRF_K, weights: list[float] | None = None) -> list[tuple[int, float]]:
    """Reciprocal-rank fusion of several rankings, each weighted (default 1): (id, score), best first."""
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights or [1.0] * len(rankings), strict=True):
        for rank, cid in enumerate(ranking, 1):
            scores[cid] = scores.get(cid, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def search(index: Index, collection: int, query: str, *, limit: int = 5, embed_model: str | None = None,
           query_vector: np.ndarray | None = None, mode: str = "hybrid") -> list[Passage]:
    """The best `limit` passages for `query`: "hybrid", "bm25" or "dense" (dense needs a vector)."""
    lexical = bm25_ranking(index, collection, query) if mode in ("hybrid", "bm25") else []
    dense: list[int] = []
    if mode in ("hybrid", "dense") and query_vector is not None and embed_model is not None:
        dense = dense_ranking(index, collection, embed_model, query_vector)
    weight = 1.0
    terms = query_terms(query)
    if lexical and dense and terms:
        total, stats = index.term_stats(collection, lexical[0], terms)
        weight = dense_weight([(idf(total, count), holds) for count, holds in stats])
    fused = fuse([lexical, dense], weights=[1.0, weight])[:limit]  # an empty ranking adds nothing
    found = index.chunks([cid for cid, _ in fused])
    bm25_at = {cid: i for i, cid in enumerate(lexical, 1)}
    dense_at = {cid: i for i, cid in enumerate(dense, 1)}
    passages = []
    for cid, score in fused:
        if cid in found:
            path, page, text, _ = found[cid]
            passages.append(Passage(cid, path, page, text, score, bm25_at.get(cid), dense_at.get(cid)))
    return passages


def idf(total: int, count: int) -> float:
    """A term's inverse document frequency as BM25 (FTS5) counts it: rare terms weigh more."""
    return math.log((total - count + 0.5) / (count + 0.5) + 1.0)


def dense_weight(terms: list[tuple[float, bool]]) -> float:
    """How much the dense ranking counts beside BM25's (whose weight is 1), from the query's terms as
    (IDF, whether BM25's best passage holds it).

    When BM25's best passage holds the question's words, the words themselves answer it and a semantic
    neighbour should not outrank that passage; when it lacks them (a paraphrase, other words for the same
    thing), the dense ranking is the better witness. So the weight is the square of the share of the
    question's information (its terms' IDF, as BM25 weighs them) that BM25's best passage lacks: 0 when it
    holds every term, 1 when it holds none. Presence is FTS5's own match, stemming included.
    """
    total = sum(weight for weight, _ in terms)
    if total <= 0:
        return 1.0
    missing = sum(weight for weight, holds in terms if not holds)
    return (missing / total) ** 2


def unit(vector: list[float]) -> np.ndarray:
    """`vector` as float32 scaled to unit length (zero stays zero)."""
    import numpy as np

    array = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(array))
    return array / norm if norm > 0 else array
