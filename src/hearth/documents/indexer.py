"""Adding files to a collection: find them, skip the unchanged, read, cut, embed and store the rest.

Incremental by content: a file whose size and mtime are as recorded is not even read; one whose bytes hash to
the recorded sha256 only has its mtime updated. Only changed or new files are parsed, and each is written in
its own transaction (see `hearth.documents.db`), so an interrupted run resumes cleanly. Files that were
indexed under one of the given paths and are gone now are dropped. A file that cannot be read is skipped
with its reason, and its old passages (if any) are dropped: they no longer say what the file says.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hearth.documents.chunk import chunk_sections
from hearth.documents.db import FileRecord, Index, NewChunk
from hearth.documents.parse import Skipped, kind_of, read_document
from hearth.documents.search import unit
from hearth.errors import ContextOverflowError, InvalidRequestError

EMBED_BATCH = 32
EMBED_CHARS = 1600  # text past this is left out of a passage's vector (a 512-token window), never out of BM25

Embedder = Callable[[list[str]], list[list[float]]]
Progress = Callable[[str, str, int, int], None]  # (event, path, done, total): "start", "file", "skip"


@dataclass(frozen=True)
class Embedding:
    """The embedding model a run uses: its digest (recorded per file) and how to embed passages."""

    digest: str
    embed: Embedder
    prefix: str = ""  # what the model wants before a document ("search_document: " for nomic)


@dataclass
class AddReport:
    """What one `docs add` did: files indexed, unchanged, dropped (gone), and skipped with their reasons."""

    collection: str
    indexed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    chunks: int = 0
    pages: int = 0
    embedded: bool = False
    note: str | None = None  # e.g. how to get an embedding model


def discover(paths: list[Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """The readable-format files under `paths` (sorted, resolved), and the given paths that were skipped."""
    found: set[Path] = set()
    skipped: list[tuple[str, str]] = []
    for given in paths:
        path = given.expanduser()
        if not path.exists():
            raise InvalidRequestError(f"{given} does not exist")
        if path.is_file():
            if kind_of(path) is None:
                skipped.append((str(path.resolve()), f"not a format Hearth reads ({path.suffix or 'no suffix'})"))
            else:
                found.add(path.resolve())
            continue
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in files:
                candidate = Path(root) / name
                if not name.startswith(".") and kind_of(candidate) is not None and candidate.is_file():
                    found.add(candidate.resolve())
    return sorted(found), skipped


def add_paths(index: Index, collection: str, paths: list[Path], embedding: Embedding | None,
              progress: Progress | None = None) -> AddReport:
    """Index `paths` (files and folders) into `collection`, incrementally."""
    files, skipped = discover(paths)
    cid = index.collection_id(collection, create=True)
    known = {f.path: f for f in index.files(cid)}
    report = AddReport(collection, skipped=skipped, embedded=embedding is not None)
    roots = [str(p.expanduser().resolve()) for p in paths]
    present = {str(f) for f in files}
    gone = [p for p in known if p not in present and any(p == r or p.startswith(r.rstrip("/") + "/")
                                                          for r in roots)]
    report.removed = gone
    index.drop_files(cid, gone)
    if progress is not None:
        progress("start", "", 0, len(files))
    for number, path in enumerate(files, 1):
        _one(index, cid, path, known.get(str(path)), embedding, report)
        if progress is not None:
            progress("file", str(path), number, len(files))
    return report


def _one(index: Index, cid: int, path: Path, known: FileRecord | None, embedding: Embedding | None,
         report: AddReport) -> None:
    """Index one file, or record why not."""
    wanted = embedding.digest if embedding is not None else None
    try:
        stat = path.stat()
        if known is not None and known.size == stat.st_size and known.mtime_ns == stat.st_mtime_ns \
                and _embedded_enough(known, wanted):
            report.unchanged.append(str(path))
            return
        data = path.read_bytes()
    except OSError as err:
        _skip(index, cid, path, known, f"cannot be read: {err.strerror or err}", report)
        return
    digest = hashlib.sha256(data).hexdigest()
    if known is not None and known.sha256 == digest and _embedded_enough(known, wanted):
        index.touch_file(known.id, stat.st_mtime_ns)
        report.unchanged.append(str(path))
        return
    kind = kind_of(path) or "text"
    try:
        sections = read_document(path, kind, data)
    except Skipped as skip:
        _skip(index, cid, path, known, skip.reason, report)
        return
    chunks = chunk_sections(sections)
    vectors = _embed([c.text for c in chunks], embedding) if embedding is not None else [None] * len(chunks)
    pages = max((s.page or 0 for s in sections), default=0) or None
    index.put_file(cid, str(path), kind, digest, stat.st_size, stat.st_mtime_ns, pages, wanted,
                   [NewChunk(c.position, c.page, c.text, v) for c, v in zip(chunks, vectors, strict=True)])
    report.indexed.append(str(path))
    report.chunks += len(chunks)
    report.pages += pages or 1


def _embedded_enough(known: FileRecord, wanted: str | None) -> bool:
    """Whether a file's stored vectors are those wanted (none wanted: whatever it has will do)."""
    return wanted is None or known.embed_model == wanted


def _skip(index: Index, cid: int, path: Path, known: FileRecord | None, reason: str, report: AddReport) -> None:
    if known is not None:
        index.drop_files(cid, [str(path)])
    report.skipped.append((str(path), reason))


def _embed(texts: list[str], embedding: Embedding) -> list[bytes | None]:
    """Unit float32 vectors (as bytes) for `texts`, in batches."""
    out: list[bytes | None] = []
    for batch in _batches([embedding.prefix + t[:EMBED_CHARS] for t in texts], EMBED_BATCH):
        try:
            vectors = embedding.embed(batch)
        except ContextOverflowError:  # dense text (code, tables) runs past the window: embed its start alone
            vectors = [embedding.embed([t[:EMBED_CHARS // 4]])[0] for t in batch]
        out.extend(unit(vector).tobytes() for vector in vectors)
    return out


def _batches(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
