"""Document collections, as every surface sees them: add, list, show, remove, search, and ground a chat.

`Documents` owns the document index (`hearth.documents`) and decides which embedding model embeds passages
and questions: the `embedding_model` setting, else the first embedding model installed, else none (BM25
alone, and `add` says how to get one). `Grounded` is a chat question with its passages: the messages to send
(the last one framed with numbered, quoted sources), the sources, and the citation check for the answer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hearth.config import Settings
from hearth.documents import (
    AddReport,
    CitationFilter,
    CollectionInfo,
    Embedding,
    FileRecord,
    Index,
    Passage,
    Source,
    add_paths,
    check_name,
    choose,
    clean,
    default_path,
    frame,
    search,
    unit,
)
from hearth.errors import InvalidRequestError, NotFoundError
from hearth.store import Manifest
from hearth.types import Message

if TYPE_CHECKING:
    import numpy as np

# llama.cpp architectures of embedding (encoder) models; a chat model is never used to embed by default
EMBEDDING_ARCHITECTURES = frozenset({"bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2", "jina-bert-v3",
                                     "modern-bert", "neo-bert", "t5encoder"})
# (query prefix, document prefix) the model was trained with
PREFIXES = {"nomic-bert": ("search_query: ", "search_document: "), "nomic-bert-moe": ("search_query: ",
                                                                                      "search_document: ")}
PASSAGES = 8  # retrieved for a chat, before the token budget picks
GET_ONE = ("no embedding model is installed, so passages are found by keywords (BM25) alone; for better "
           "retrieval get one with `hearth pull all-minilm` (or nomic-embed-text) and run `hearth docs add` again")
MODES = ("hybrid", "bm25", "dense")

EmbedFn = Callable[[str, list[str]], Any]  # Hearth.embed: (model, texts) → Embeddings
Counter = Callable[[], AbstractContextManager[tuple[Callable[[str], int], int]]]  # (count tokens, budget)


def is_embedding_model(manifest: Manifest) -> bool:
    """Whether a model is an embedding model (an encoder llama.cpp pools into one vector)."""
    return manifest.info.architecture in EMBEDDING_ARCHITECTURES


@dataclass(frozen=True)
class Collection:
    """A collection's counts and its files."""

    info: CollectionInfo
    files: list[FileRecord]


@dataclass(frozen=True)
class Removed:
    """What `docs rm` deleted, and whether the text has left every database file."""

    collection: str
    files: list[str]
    whole: bool
    complete: bool


@dataclass(frozen=True)
class Found:
    """Search results, how they were found ("hybrid", "bm25", "dense"), and a note for the user if any."""

    passages: list[Passage]
    mode: str
    note: str | None = None


@dataclass(frozen=True)
class CitedAnswer:
    """An answer with invented citations dropped, and the sources: all given, and those it cited."""

    text: str
    sources: list[Source]
    cited: list[int]
    dropped: list[int]

    @property
    def cited_sources(self) -> list[Source]:
        """The sources the answer cites, in the order it first cites them."""
        by_number = {s.number: s for s in self.sources}
        return [by_number[n] for n in self.cited if n in by_number]

    def sources_json(self) -> list[dict[str, Any]]:
        """The sources for an API response: number, path, page, whether cited, score and the passage's text."""
        return [{"number": s.number, "path": s.path, "page": s.page, "cited": s.number in self.cited,
                 "score": round(s.score, 6), "text": s.text} for s in self.sources]


@dataclass
class Grounded:
    """A question with its retrieved passages: the messages to send and the sources they cite."""

    collection: str
    question: str
    messages: list[Message]
    sources: list[Source]
    mode: str
    note: str | None = None
    original: list[Message] = field(default_factory=list)  # the messages as asked, without the passages

    def citations(self) -> CitationFilter:
        """A filter for the streaming answer: invented citation numbers are dropped as they pass."""
        return CitationFilter(len(self.sources))

    def cite(self, text: str) -> CitedAnswer:
        """The whole answer checked: invented citations dropped, cited sources listed."""
        cleaned, cited, dropped = clean(text, len(self.sources))
        return CitedAnswer(cleaned, self.sources, cited, dropped)

    def finished(self, citations: CitationFilter, text: str) -> CitedAnswer:
        """The answer a streaming `citations` filter let through (`text`), with its sources."""
        return CitedAnswer(text, self.sources, list(citations.cited), list(citations.dropped))


class Documents:
    """The document collections of this computer (one SQLite index under HEARTH_HOME)."""

    def __init__(self, settings: Settings, home: Callable[[], Path], models: Callable[[], list[Manifest]],
                 find: Callable[[str], Manifest], embed: EmbedFn) -> None:
        self.settings = settings
        self._home = home
        self._models = models
        self._find = find
        self._embed = embed
        self._index: Index | None = None
        self._lock = threading.RLock()

    @property
    def path(self) -> Path:
        """Where the index is (a SQLite file)."""
        return default_path(self._home())

    @contextmanager
    def _db(self) -> Iterator[Index]:
        with self._lock:
            if self._index is None:
                self._index = Index(self.path)
            yield self._index

    def close(self) -> None:
        """Close the index."""
        with self._lock:
            if self._index is not None:
                self._index.close()
                self._index = None

    # -- the embedding model ----------------------------------------------------------------------------------
    def embedding_model(self) -> Manifest | None:
        """The model that embeds passages and questions (setting, else the first installed), or None."""
        wanted = self.settings.embedding_model.strip()
        if wanted.lower() == "none":
            return None
        if wanted:
            manifest = self._find(wanted)
            if not is_embedding_model(manifest):
                raise InvalidRequestError(
                    f"{manifest.name} is a {manifest.info.architecture} model, not an embedding model",
                    field="embedding_model", hint="set embedding_model to one such as all-minilm, or leave it empty")
            return manifest
        return next((m for m in sorted(self._models(), key=lambda m: m.name) if is_embedding_model(m)), None)

    def _embedding(self, manifest: Manifest) -> Embedding:
        _, document = PREFIXES.get(manifest.info.architecture, ("", ""))
        return Embedding(manifest.digest, lambda texts: self._embed(manifest.name, texts).vectors, document)

    def _query_vector(self, manifest: Manifest, query: str) -> np.ndarray:
        prefix, _ = PREFIXES.get(manifest.info.architecture, ("", ""))
        return unit(self._embed(manifest.name, [prefix + query[:1000]]).vectors[0])

    # -- collections ----------------------------------------------------------------------------------------
    def add(self, collection: str, paths: list[Path],
            progress: Callable[[str, str, int, int], None] | None = None) -> AddReport:
        """Index files and folders into `collection` (created if new): only what changed, dropping the deleted."""
        check_name(collection)
        if not paths:
            raise InvalidRequestError("name at least one file or folder to add")
        manifest = self.embedding_model()
        with self._db() as index:
            report = add_paths(index, collection, paths, self._embedding(manifest) if manifest else None, progress)
        if manifest is None:
            report.note = GET_ONE
        return report

    def list(self) -> list[CollectionInfo]:
        """Every collection, by name."""
        with self._db() as index:
            return index.collections()

    def show(self, collection: str) -> Collection:
        """One collection with its files (NotFoundError if there is none)."""
        with self._db() as index:
            cid = index.collection_id(collection)
            return Collection(index.collection(collection), index.files(cid))

    def remove(self, collection: str, path: Path | None = None) -> Removed:
        """Delete a collection, or the files at or under `path` in it, for good (erased from the files)."""
        with self._db() as index:
            cid = index.collection_id(collection)
            if path is None:
                files = [f.path for f in index.files(cid)]
                index.drop_collection(cid)
            else:
                target = str(path.expanduser().resolve())
                files = index.drop_under(cid, target)
                if not files:
                    raise NotFoundError(f"{path} is not in collection {collection!r}",
                                        hint=f"`hearth docs show {collection}` lists its files")
            complete = index.erase_freed_space()
        return Removed(collection, files, path is None, complete)

    def search(self, collection: str, query: str, *, limit: int = 5, mode: str = "hybrid") -> Found:
        """The best passages for `query`, with how they were found (dense needs an embedding model)."""
        if mode not in MODES:
            raise InvalidRequestError(f"search mode must be one of {', '.join(MODES)}", field="mode")
        if not query.strip():
            raise InvalidRequestError("the search query is empty", field="query")
        limit = max(1, min(int(limit), 100))
        manifest = self.embedding_model() if mode != "bm25" else None
        with self._db() as index:
            cid = index.collection_id(collection)
            vector = self._query_vector(manifest, query) if manifest is not None else None
            passages = search(index, cid, query, limit=limit, mode=mode, query_vector=vector,
                              embed_model=manifest.digest if manifest else None)
            embedded = manifest is not None and len(index.vectors(cid, manifest.digest)[0]) > 0
        if mode != "bm25" and not embedded:
            note = GET_ONE if manifest is None else (
                f"no passage of {collection!r} is embedded by {manifest.name}: run `hearth docs add` again "
                "to embed them")
            return Found(passages, "bm25", note)
        return Found(passages, mode)

    def ground(self, collection: str, messages: list[Message], counter: Counter) -> Grounded:
        """Retrieve passages for the last user message and frame it with them, within the token budget.

        `counter()` is entered only after retrieval (which may load the embedding model) and yields a token
        counter and the budget.
        """
        last = max((i for i, m in enumerate(messages) if m.role == "user"), default=None)
        if last is None:
            raise InvalidRequestError("a chat with documents needs a user message to answer", field="messages")
        question = messages[last].content
        found = self.search(collection, question, limit=PASSAGES)
        with counter() as (count, budget):
            sources = choose(found.passages, budget, count)
        framed = list(messages)
        if sources:
            framed[last] = replace(messages[last], content=frame(question, sources))
        note = found.note if sources else f"nothing in {collection!r} matches this question"
        return Grounded(collection, question, framed, sources, found.mode, note, list(messages))
