"""Reading each format, and skipping what cannot be read with a reason (never fatal)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hearth.documents import parse
from hearth.documents.chunk import chunk_sections
from hearth.documents.parse import Section, Skipped, kind_of, read_document
from tests.documents.files import write_docx, write_pdf


def read(path: Path) -> list[Section]:
    return read_document(path, kind_of(path) or "text", path.read_bytes())


def test_text_markdown_and_html_are_read(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Plain   text\r\nwith lines", encoding="utf-8")
    (tmp_path / "b.md").write_text("# Title\n\nSome *markdown*.", encoding="utf-8")
    (tmp_path / "c.html").write_text("<html><head><title>T</title><style>p{}</style><script>evil()</script></head>"
                                     "<body><p>Visible words</p></body></html>", encoding="utf-8")
    assert read(tmp_path / "a.txt") == [Section(None, "Plain text\nwith lines")]
    assert "markdown" in read(tmp_path / "b.md")[0].text
    html = read(tmp_path / "c.html")[0].text
    assert "Visible words" in html and "evil" not in html and "p{}" not in html


def test_a_pdf_is_read_page_by_page(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "p.pdf", ["First page about apples.", "Second page about (quokkas)."])
    assert read(path) == [Section(1, "First page about apples."), Section(2, "Second page about (quokkas).")]


def test_a_docx_is_read(tmp_path: Path) -> None:
    path = write_docx(tmp_path / "d.docx", ["Hello from Word.", "A second paragraph."])
    assert read(path) == [Section(None, "Hello from Word.\nA second paragraph.")]


@pytest.mark.parametrize(("name", "data", "reason"), [
    ("corrupt.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage", "damaged or not a valid PDF"),
    ("notzip.docx", b"this is not a zip file", "damaged or not a valid DOCX"),
    ("binary.txt", b"\x00\x01\x02binary", "binary data"),
    ("empty.md", b"   \n\n ", "no text found"),
])
def test_unreadable_files_are_skipped_with_a_reason(tmp_path: Path, name: str, data: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(Skipped) as caught:
        read(path)
    assert reason in caught.value.reason


def test_an_encrypted_pdf_is_skipped(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "secret.pdf", ["Top secret text."], password="hunter2")
    with pytest.raises(Skipped, match="encrypted PDF"):
        read(path)


def test_an_enormous_file_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parse, "MAX_FILE_BYTES", 1000)
    path = tmp_path / "big.txt"
    path.write_text("word " * 1000, encoding="utf-8")
    with pytest.raises(Skipped, match="too large"):
        read(path)


def test_chunks_keep_their_page_and_cut_long_paragraphs_with_overlap() -> None:
    long = " ".join(f"w{i}" for i in range(400))
    chunks = chunk_sections([Section(1, "short one\n\nshort two"), Section(2, long)], words=150, overlap=25)
    assert chunks[0].page == 1 and chunks[0].text == "short one\n\nshort two"
    on_two = [c for c in chunks if c.page == 2]
    assert len(on_two) == 3 and all(len(c.text.split()) <= 150 for c in on_two)
    assert on_two[1].text.split()[0] == "w125"  # the window overlaps the last by 25 words
    assert [c.position for c in chunks] == list(range(len(chunks)))
