"""`hearth docs ...` and `--docs` as a user runs them: real commands, clean errors, no tracebacks."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import HEARTH, cli_env
from tests.documents.files import write_pdf


def hearth(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HEARTH, *args], env=cli_env(home), capture_output=True, text=True, timeout=300)


def test_docs_commands_from_add_to_rm(tmp_path: Path) -> None:
    home, folder = tmp_path / "home", tmp_path / "papers"
    folder.mkdir()
    (folder / "kites.md").write_text("Kites fly best in a steady wind of 15 km/h.", encoding="utf-8")
    write_pdf(folder / "boats.pdf", ["Boats.", "A sloop has a single mast."])
    write_pdf(folder / "locked.pdf", ["Hidden."], password="pw")
    added = hearth(home, "docs", "add", "papers", str(folder))
    assert added.returncode == 0, added.stderr
    assert "papers: 2 file(s) indexed" in added.stdout and "1 skipped" in added.stdout
    assert "skipped" in added.stderr and "locked.pdf: encrypted PDF" in added.stderr
    assert "hearth pull all-minilm" in added.stderr  # no embedding model here: how to get one
    assert "papers" in hearth(home, "docs", "list").stdout
    shown = hearth(home, "docs", "show", "papers").stdout
    assert "boats.pdf  (2 pages" in shown and "kites.md" in shown
    found = hearth(home, "docs", "search", "papers", "how many masts does a sloop have")
    assert found.returncode == 0 and found.stdout.startswith(f"1. {(folder / 'boats.pdf').resolve()}, page 2")
    as_json = json.loads(hearth(home, "docs", "search", "papers", "sloop mast", "--json").stdout)
    assert as_json["mode"] == "bm25" and as_json["passages"][0]["page"] == 2
    again = hearth(home, "docs", "add", "papers", str(folder))
    assert "0 file(s) indexed" in again.stdout and "2 unchanged" in again.stdout
    removed = hearth(home, "docs", "rm", "papers")
    assert removed.returncode == 0 and "Deleted collection papers." in removed.stdout
    assert "No collections yet" in hearth(home, "docs", "list").stdout


def test_bad_input_is_a_sentence_not_a_traceback(tmp_path: Path) -> None:
    home = tmp_path / "home"
    for args, expected in [
        (("docs", "search", "nothing", "query"), "there is no document collection named 'nothing'"),
        (("docs", "add", "bad/name", str(tmp_path)), "is not a valid collection name"),
        (("docs", "add", "ok", str(tmp_path / "missing")), "does not exist"),
        (("run", "--docs", "nothing", "smollm2:135m", "hi"), "there is no document collection named 'nothing'"),
    ]:
        done = hearth(home, *args)
        assert done.returncode == 1 and expected in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_run_with_docs_lists_the_cited_sources(tmp_path: Path) -> None:
    home, folder = tmp_path / "home", tmp_path / "papers"
    folder.mkdir()
    write_pdf(folder / "boats.pdf", ["Boats.", "A sloop has a single mast."])
    assert hearth(home, "docs", "add", "papers", str(folder)).returncode == 0
    grammar = 'grammar=root ::= "One mast [1][3]."'
    done = hearth(home, "run", "--docs", "papers", "smollm2:135m", "How many masts has a sloop?", "-o", grammar,
                  "-o", "temperature=0", "--no-history")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("One mast [1].") and f"[1] {(folder / 'boats.pdf').resolve()}, page 2" in done.stdout
    as_json = json.loads(hearth(home, "run", "--docs", "papers", "smollm2:135m", "How many masts?", "-o", grammar,
                                "--json", "--no-history").stdout)
    assert as_json["response"] == "One mast [1]." and as_json["sources"][0]["cited"] is True


def test_chat_with_docs_answers_each_question_with_its_sources(tmp_path: Path) -> None:
    home, folder = tmp_path / "home", tmp_path / "papers"
    folder.mkdir()
    write_pdf(folder / "boats.pdf", ["Boats.", "A sloop has a single mast."])
    assert hearth(home, "docs", "add", "papers", str(folder)).returncode == 0
    done = subprocess.run([HEARTH, "chat", "smollm2:135m", "--docs", "papers", "--no-history", "-o",
                           'grammar=root ::= "One mast [1][2]."'], input="How many masts has a sloop?\n/bye\n",
                          env=cli_env(home), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "One mast [1]." in done.stdout and "[1][2]" not in done.stdout
    assert f"Sources:\n  [1] {(folder / 'boats.pdf').resolve()}, page 2" in done.stdout


def test_docs_add_shows_a_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    import pexpect

    folder = tmp_path / "notes"
    folder.mkdir()
    for i in range(5):
        (folder / f"n{i}.txt").write_text(f"Note {i} about kites.", encoding="utf-8")
    child = pexpect.spawn(HEARTH, ["docs", "add", "notes", str(folder)], env=cli_env(tmp_path / "home"),
                          encoding="utf-8", timeout=120, dimensions=(40, 200))
    child.expect(r"0/5 \[")  # tqdm's count of files, drawn on stderr (the terminal), then cleared
    child.expect("notes: 5 file\\(s\\) indexed")
    child.expect(pexpect.EOF)
