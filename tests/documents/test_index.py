"""The index on disk: incremental re-adding, deleted files, real deletion, and a killed `add` resuming cleanly.

These run BM25 alone (no embedding model): storage does not depend on the vectors, which tests/documents/
test_retrieval.py covers with the real embedding model.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from hearth.documents import Embedding, Index, add_paths, search, unit
from hearth.documents.chunk import chunk_sections
from hearth.documents.parse import Section
from tests.documents.files import write_docx, write_pdf

SECRET = "Zanzibarquux"


def corpus(folder: Path) -> Path:
    """Mixed formats, one fact each, plus a corrupt and an encrypted PDF."""
    (folder / "sub").mkdir(parents=True)
    (folder / "lighthouse.txt").write_text("The lighthouse keeper lights the lamp at dusk.", encoding="utf-8")
    (folder / "sub" / "bread.md").write_text("# Bread\n\nFeed the sourdough starter the night before.",
                                             encoding="utf-8")
    (folder / "bees.html").write_text("<html><body><p>Honey bees dance to share directions.</p></body></html>",
                                      encoding="utf-8")
    write_pdf(folder / "manual.pdf", ["Chapter one is about installation.",
                                      "The reset button is behind the left hinge."])
    write_docx(folder / "letter.docx", ["Dear friend,", f"The password hint is {SECRET}."])
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\nnot really a pdf")
    write_pdf(folder / "locked.pdf", ["Hidden words."], password="s3cret")
    (folder / "image.png").write_bytes(b"\x89PNG\r\n")  # not a document format: not even looked at
    return folder


@pytest.fixture
def index(tmp_path: Path) -> Index:
    return Index(tmp_path / "home" / "documents" / "documents.db")


def names(paths: list[str]) -> list[str]:
    return sorted(Path(p).name for p in paths)


def test_a_mixed_folder_is_indexed_and_bad_files_are_skipped_with_reasons(index: Index, tmp_path: Path) -> None:
    folder = corpus(tmp_path / "docs")
    report = add_paths(index, "mixed", [folder], None)
    assert names(report.indexed) == ["bees.html", "bread.md", "letter.docx", "lighthouse.txt", "manual.pdf"]
    reasons = {Path(p).name: r for p, r in report.skipped}
    assert set(reasons) == {"broken.pdf", "locked.pdf"}
    assert "damaged" in reasons["broken.pdf"] and "encrypted" in reasons["locked.pdf"]
    cid = index.collection_id("mixed")
    [best, *_] = search(index, cid, "where is the reset button")
    assert (Path(best.path).name, best.page) == ("manual.pdf", 2)
    assert os.stat(index.path).st_mode & 0o777 == 0o600
    assert os.stat(index.path.parent).st_mode & 0o777 == 0o700


def test_re_adding_reads_only_the_changed_file_and_drops_the_deleted(index: Index, tmp_path: Path) -> None:
    folder = corpus(tmp_path / "docs")
    add_paths(index, "c", [folder], None)
    (folder / "lighthouse.txt").write_text("The lighthouse keeper now lights the lamp at noon.", encoding="utf-8")
    os.utime(folder / "sub" / "bread.md")  # touched, same content: hashed, not re-read
    (folder / "bees.html").unlink()
    again = add_paths(index, "c", [folder], None)
    assert names(again.indexed) == ["lighthouse.txt"]
    assert names(again.unchanged) == ["bread.md", "letter.docx", "manual.pdf"]
    assert names(again.removed) == ["bees.html"]
    cid = index.collection_id("c")
    assert search(index, cid, "honey bees dance") == []
    assert "noon" in search(index, cid, "when is the lamp lit")[0].text
    assert add_paths(index, "c", [folder], None).indexed == []


def test_a_file_that_turns_unreadable_loses_its_old_passages(index: Index, tmp_path: Path) -> None:
    folder = corpus(tmp_path / "docs")
    add_paths(index, "c", [folder], None)
    (folder / "manual.pdf").write_bytes(b"%PDF-1.4 truncated")
    report = add_paths(index, "c", [folder], None)
    assert "manual.pdf" in [Path(p).name for p, _ in report.skipped]
    assert search(index, index.collection_id("c"), "reset button hinge") == []


def database_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file())


@pytest.mark.parametrize("whole", [True, False])
def test_removal_leaves_no_trace_of_the_text_in_the_files(index: Index, tmp_path: Path, whole: bool) -> None:
    folder = corpus(tmp_path / "docs")
    add_paths(index, "c", [folder], None)
    add_paths(index, "other", [folder / "lighthouse.txt"], None)
    for word in (SECRET, SECRET.lower()):
        assert word.encode() in database_bytes(index.path.parent)
    cid = index.collection_id("c")
    if whole:
        index.drop_collection(cid)
    else:
        index.drop_under(cid, str((folder / "letter.docx").resolve()))
    assert index.erase_freed_space()
    index.close()
    data = database_bytes(index.path.parent)
    assert SECRET.encode() not in data and SECRET.lower().encode() not in data
    assert b"lighthouse keeper" in data  # the other collection is intact


WRITER = r"""
import sys
from pathlib import Path
from hearth.documents import Index, add_paths
index = Index(Path(sys.argv[1]))
add_paths(index, "big", [Path(sys.argv[2])], None, lambda event, path, done, total: print(done, flush=True))
"""


def test_a_killed_add_resumes_cleanly(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(400):
        (folder / f"note{i:03}.txt").write_text(f"Note number {i}. " + "filler words here " * 400, encoding="utf-8")
    db = tmp_path / "home" / "documents.db"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(folder)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None
    for line in writer.stdout:
        if int(line) >= 40:
            break
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    per_file = conn.execute("SELECT f.path, COUNT(k.id) FROM files f LEFT JOIN chunks k ON k.file_id = f.id "
                            "GROUP BY f.id").fetchall()
    conn.close()
    assert 40 <= len(per_file) < 400
    whole = len(chunk_sections([Section(None, "Note number 1. " + "filler words here " * 400)]))
    assert {count for _, count in per_file} == {whole}  # every file recorded is whole, none half-indexed
    index = Index(db)
    report = add_paths(index, "big", [folder], None)
    assert len(report.unchanged) == len(per_file) and len(report.indexed) == 400 - len(per_file)
    assert len(index.files(index.collection_id("big"))) == 400


def test_term_presence_is_judged_by_fts5_with_its_stemming(index: Index, tmp_path: Path) -> None:
    folder = corpus(tmp_path / "docs")
    add_paths(index, "mixed", [folder], None)
    cid = index.collection_id("mixed")
    [best, *_] = search(index, cid, "feeding sourdough starters")
    total, stats = index.term_stats(cid, best.chunk_id, ["feeding", "sourdough", "starters", "hinge", 'x"y'])
    assert total >= 5
    # "feeding" and "starters" are in the passage as "Feed" and "starter" (Porter stems, as BM25 matched them)
    assert [holds for _, holds in stats] == [True, True, True, False, False]
    assert [count for count, _ in stats] == [1, 1, 1, 1, 0]


def test_a_passage_holding_every_word_of_the_question_stays_first_whatever_the_dense_side_says(
        index: Index, tmp_path: Path) -> None:
    folder = tmp_path / "manual"
    folder.mkdir()
    (folder / "a.txt").write_text("The reset button is behind the left hinge.", encoding="utf-8")
    (folder / "c.txt").write_text("A reset clears every setting you made.", encoding="utf-8")
    (folder / "b.txt").write_text("Press the small round switch on the back to restart the device.", encoding="utf-8")
    # stand-in vectors (the embedding model is the engine's; fusion is what is checked here): the dense side
    # ranks c, then b, then a
    vectors = {"reset clears": [1.0, 0.0, 0.0], "round switch": [0.8, 0.6, 0.0], "left hinge": [0.0, 0.0, 1.0]}

    def embed(texts: list[str]) -> list[list[float]]:
        return [next(v for k, v in vectors.items() if k in t) for t in texts]

    add_paths(index, "manual", [folder], Embedding("sha256:stand-in", embed))
    cid = index.collection_id("manual")
    question, toward_c = "where is the reset button hinge", unit([1.0, 0.0, 0.0])
    lexical = [names([p.path])[0] for p in search(index, cid, question, mode="bm25", limit=3)]
    dense = [names([p.path])[0] for p in search(index, cid, question, mode="dense", limit=3,
                                                  embed_model="sha256:stand-in", query_vector=toward_c)]
    assert lexical[:2] == ["a.txt", "c.txt"] and dense == ["c.txt", "b.txt", "a.txt"]
    # equal weights would put c first (in both lists near the top); a holds every word, so dense counts 0
    hybrid = search(index, cid, question, limit=3, embed_model="sha256:stand-in", query_vector=toward_c)
    assert [names([p.path])[0] for p in hybrid] == ["a.txt", "c.txt", "b.txt"]
