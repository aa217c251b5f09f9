"""Cutting a document's sections into passages: whole paragraphs packed up to a size, never across a page.

A passage is about `WORDS` words (some 200 tokens): small enough for an embedding model's 512-token window
and for several to fit a prompt, large enough to carry an answer with its context. A paragraph longer than
that is cut into windows that overlap by `OVERLAP` words, so no sentence is lost at a cut.
"""

from __future__ import annotations

from dataclasses import dataclass

from hearth.documents.parse import Section

WORDS = 150
OVERLAP = 25


@dataclass(frozen=True)
class Chunk:
    """One passage: its place in the document, its page (None without pages) and its text."""

    position: int
    page: int | None
    text: str


def chunk_sections(sections: list[Section], words: int = WORDS, overlap: int = OVERLAP) -> list[Chunk]:
    """The passages of a document, in order."""
    chunks: list[Chunk] = []
    for section in sections:
        for text in _pack(_pieces(section.text, words, overlap), words):
            chunks.append(Chunk(len(chunks), section.page, text))
    return chunks


def _pieces(text: str, words: int, overlap: int) -> list[str]:
    """Paragraphs, with those longer than `words` cut into overlapping windows."""
    pieces = []
    for paragraph in text.split("\n\n"):
        tokens = paragraph.split()
        if not tokens:
            continue
        if len(tokens) <= words:
            pieces.append(paragraph.strip())
            continue
        step = max(1, words - overlap)
        for start in range(0, len(tokens), step):
            pieces.append(" ".join(tokens[start:start + words]))
            if start + words >= len(tokens):
                break
    return pieces


def _pack(pieces: list[str], words: int) -> list[str]:
    """Consecutive pieces joined while they stay within `words` words."""
    packed: list[str] = []
    current: list[str] = []
    size = 0
    for piece in pieces:
        n = len(piece.split())
        if current and size + n > words:
            packed.append("\n\n".join(current))
            current, size = [], 0
        current.append(piece)
        size += n
    if current:
        packed.append("\n\n".join(current))
    return packed
