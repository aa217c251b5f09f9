"""Reading documents into text: plain text, Markdown, HTML, PDF (page by page) and DOCX.

Each format goes through a well-kept parser: pypdf for PDF, python-docx for DOCX, Beautiful Soup (with lxml)
for HTML. A file that cannot be read (encrypted, corrupt, binary, empty, enormous) raises `Skipped` with a
reason a person can act on; the indexer reports it and goes on, so no one file can stop a folder.
"""

from __future__ import annotations

import logging
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MAX_FILE_BYTES = 64 << 20  # larger files are skipped as enormous
MAX_TEXT_CHARS = 20_000_000  # a document whose text is longer than this is skipped (a zip bomb, a log dump)
TEXT_SUFFIXES = {".txt", ".text", ".md", ".markdown", ".rst", ".csv", ".log"}
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | {".pdf", ".docx"}


class Skipped(Exception):
    """A file that is not indexed, and why (`reason`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Section:
    """Text from one page of a document (`page` is None for formats without pages)."""

    page: int | None
    text: str


def kind_of(path: Path) -> str | None:
    """"text", "html", "pdf" or "docx" from the file name; None for a format Hearth does not read."""
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        return "text"
    if suffix in HTML_SUFFIXES:
        return "html"
    if suffix in (".pdf", ".docx"):
        return suffix[1:]
    return None


def read_document(path: Path, kind: str, data: bytes) -> list[Section]:
    """The text of a document whose bytes are `data`, in sections (pages); `Skipped` if it has none."""
    if len(data) > MAX_FILE_BYTES:
        raise Skipped(f"too large ({len(data) >> 20} MiB; the limit is {MAX_FILE_BYTES >> 20} MiB)")
    readers: dict[str, Callable[[Path, bytes], list[Section]]] = {
        "text": _text, "html": _html, "pdf": _pdf, "docx": _docx}
    try:
        sections = readers[kind](path, data)
    except Skipped:
        raise
    except MemoryError:
        raise Skipped("too large to read in memory") from None
    except Exception as err:  # noqa: BLE001 - a parser's failure on a damaged file, whatever its class
        raise Skipped(f"damaged or not a valid {kind.upper()} file ({type(err).__name__}: {str(err)[:120]})") from None
    sections = [Section(s.page, _tidy(s.text)) for s in sections]
    sections = [s for s in sections if s.text]
    if not sections:
        raise Skipped("no text found" + (" (a scanned PDF needs OCR first)" if kind == "pdf" else ""))
    if sum(len(s.text) for s in sections) > MAX_TEXT_CHARS:
        raise Skipped(f"more than {MAX_TEXT_CHARS:,} characters of text")
    return sections


def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if b"\x00" in data[:8192]:
        raise Skipped("binary data, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _text(path: Path, data: bytes) -> list[Section]:
    return [Section(None, _decode(data))]


def _html(path: Path, data: bytes) -> list[Section]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data, "lxml")
    for tag in soup(["script", "style", "noscript", "template", "svg", "head"]):
        tag.decompose()
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    body = soup.get_text("\n")
    return [Section(None, f"{title}\n{body}" if title else body)]


def _pdf(path: Path, data: bytes) -> list[Section]:
    import io

    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its warnings about damaged files: the skip reason says it
    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        try:
            opened = reader.decrypt("")
        except (DependencyError, NotImplementedError) as err:
            raise Skipped(f"encrypted PDF ({err})") from None
        if not opened:
            raise Skipped("encrypted PDF: it needs a password")
    sections = []
    try:
        for number, page in enumerate(reader.pages, 1):
            sections.append(Section(number, page.extract_text() or ""))
    except FileNotDecryptedError:
        raise Skipped("encrypted PDF: it needs a password") from None
    return sections


def _docx(path: Path, data: bytes) -> list[Section]:
    import io

    import docx

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        try:
            size = archive.getinfo("word/document.xml").file_size
        except KeyError:
            raise Skipped("damaged or not a valid DOCX file (no word/document.xml)") from None
        if size > MAX_TEXT_CHARS * 4:
            raise Skipped(f"its text unpacks to {size >> 20} MiB")
    document = docx.Document(io.BytesIO(data))
    lines = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            lines.append(" | ".join(cell.text for cell in row.cells))
    return [Section(None, "\n".join(lines))]


_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANKS = re.compile(r"\n\s*\n\s*(\n\s*)+")


def _tidy(text: str) -> str:
    """Runs of spaces to one, three or more newlines to two, control characters out."""
    text = text.replace("\x00", "")
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANKS.sub("\n\n", text).strip()
