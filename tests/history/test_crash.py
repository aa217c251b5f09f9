"""Crash safety: kill -9 at any moment leaves the history as it was before or after a turn, never corrupt."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pexpect
import psutil

from hearth.history import History
from tests.conftest import HEARTH, cli_env

WRITER = r"""
import sys
from pathlib import Path
from hearth.history import Entry, History
history = History(Path(sys.argv[1]))
big = "lorem ipsum " * 2000
turn = 0
while True:
    cid = history.start("chat", [Entry("system", "crash test")])
    for _ in range(5):
        turn += 1
        history.append(cid, [Entry("user", f"question {turn} {big}"), Entry("assistant", f"answer {turn} {big}")])
        print(turn, flush=True)
    if turn % 15 == 0:
        history.delete([s.id for s in history.list(limit=2)[1:]])  # VACUUM, killed now and then too
"""


def check(path: Path) -> int:
    """Integrity of the database and of every conversation (whole turns only); returns the turn count."""
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.execute("INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')")
    conn.close()
    turns = 0
    with History(path) as history:
        for summary in history.list(limit=10_000):
            roles = [m.role for m in history.get(summary.id).messages]
            assert roles[0] == "system" and roles[1:] == ["user", "assistant"] * ((len(roles) - 1) // 2), roles
            turns += (len(roles) - 1) // 2
    return turns


def test_kill_9_while_writing_never_corrupts_the_database(tmp_path: Path) -> None:
    path = tmp_path / "history" / "history.db"
    rng = random.Random(7)
    for _ in range(4):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
        assert writer.stdout is not None
        for _ in range(rng.randint(3, 40)):  # let it get somewhere, then kill it mid-write
            writer.stdout.readline()
        writer.send_signal(signal.SIGKILL)
        writer.wait(30)
        check(path)


def test_kill_9_during_a_streamed_chat_answer_keeps_the_previous_turns(tmp_path: Path) -> None:
    home = tmp_path / "home"
    child = pexpect.spawn(HEARTH, ["chat", "-o", "temperature=0"], env=cli_env(home), encoding="utf-8",
                          timeout=180, dimensions=(40, 200))
    child.expect(">>> ")
    child.sendline("Say hello in one word.")
    child.expect(">>> ")
    child.sendline("/set num_predict 2000")
    child.sendline("Write a very long essay about the history of bread.")
    child.expect("bread.\r\n")
    child.expect(r"\w+ \w+ \w+ \w+")  # the answer is streaming
    workers = psutil.Process(child.pid).children(recursive=True)
    os.kill(child.pid, signal.SIGKILL)
    for worker in workers:  # the model worker would notice its parent died; do not wait for it
        worker.kill()
    child.expect(pexpect.EOF)
    path = home / "history" / "history.db"
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    with History(path) as history:
        [summary] = history.list()
        assert [m.role for m in history.get(summary.id).messages] == ["user", "assistant"]
        assert "bread" not in history.get(summary.id).messages[0].content
