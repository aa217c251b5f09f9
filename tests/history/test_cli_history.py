"""`hearth history ...`, and recording from `hearth run` and `hearth chat`, through the real command."""

from __future__ import annotations

import json
import sqlite3
import stat
import subprocess
from pathlib import Path

import pexpect

from hearth.store.bundled import KNOWN_DIGESTS
from tests.conftest import HEARTH, cli_env

FAST = ("-o", "temperature=0", "-o", "num_predict=12")


def hearth(home: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None,
           ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HEARTH, *args], capture_output=True, text=True, timeout=300, input=stdin,
                          env={**cli_env(home), **(env or {})}, check=False)


def conversations(home: Path) -> list[dict]:
    result = hearth(home, "history", "list", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def chat(home: Path, *args: str, first: str | None = None) -> pexpect.spawn:
    """`hearth chat ARGS` in a pseudo-terminal, once it has printed `first` (if given) and its prompt."""
    child = pexpect.spawn(HEARTH, ["chat", *args], env=cli_env(home), encoding="utf-8", timeout=180,
                          dimensions=(40, 200))
    child.expect("Chatting with")
    if first is not None:
        child.expect(first)
    child.expect("\r\n>>> ")  # the prompt (remembered questions are shown dimmed, after an escape code)
    return child


def test_run_is_recorded_and_every_history_command_round_trips(home: Path, tmp_path: Path) -> None:
    first = hearth(home, "run", "smollm2:135m", "How do I bake sourdough bread?", *FAST, "-s", "Be brief.")
    assert first.returncode == 0, first.stderr
    assert hearth(home, "run", "smollm2:135m", "Name a colour.", *FAST).returncode == 0
    listed = conversations(home)
    assert [c["title"] for c in listed] == ["Name a colour.", "How do I bake sourdough bread?"]
    old = listed[1]["id"]
    assert "sourdough" in hearth(home, "history", "list").stdout

    shown = hearth(home, "history", "show", old[:5])
    assert shown.returncode == 0 and "[1] system" in shown.stdout and "[3] assistant · smollm2:135m" in shown.stdout
    found = json.loads(hearth(home, "history", "search", "sourdough", "--json").stdout)
    assert (old, 2) in [(h["conversation_id"], h["position"]) for h in found]  # the answer may match too
    assert {h["conversation_id"] for h in found} == {old} and all("sourdough" in h["snippet"].lower() for h in found)

    markdown = hearth(home, "history", "export", old).stdout
    assert markdown.startswith("# How do I bake sourdough bread?") and "## 3. Assistant · smollm2:135m" in markdown
    data = json.loads(hearth(home, "history", "export", old, "--format", "json").stdout)
    reply = data["messages"][2]
    assert reply["model_digest"] == KNOWN_DIGESTS["0.1.2"] and reply["parameters"]["num_predict"] == 12
    assert "<|im_start|>" in data["templates"][reply["template_digest"]]
    assert 0 < reply["stats"]["completion_tokens"] <= 12 and reply["content"] in first.stdout
    out = tmp_path / "chat.md"
    assert hearth(home, "history", "export", old, "-o", str(out)).returncode == 0
    assert out.read_text() == markdown and stat.S_IMODE(out.stat().st_mode) == 0o600

    assert hearth(home, "history", "rm", old[:6]).stdout.strip() == "deleted 1 conversation"
    assert [c["title"] for c in conversations(home)] == ["Name a colour."]
    assert b"sourdough" not in b"".join(p.read_bytes() for p in (home / "history").iterdir())
    missing = hearth(home, "history", "show", old)
    assert missing.returncode == 1 and missing.stderr.startswith("Error: conversation")
    assert "Traceback" not in missing.stderr
    (home / "chat_history").write_text("typed lines\n")
    assert hearth(home, "history", "rm", "--all", "--yes").returncode == 0
    assert conversations(home) == [] and not (home / "chat_history").exists()
    assert hearth(home, "history", "path").stdout.strip() == str(home / "history" / "history.db")
    assert hearth(home, "history", "rm").returncode == 2  # nothing said what to delete


def test_no_history_flag_and_settings_record_nothing(home: Path) -> None:
    assert hearth(home, "run", "smollm2:135m", "Hi", *FAST, "--no-history").returncode == 0
    assert hearth(home, "run", "smollm2:135m", "Hi", *FAST, env={"HEARTH_HISTORY": "false"}).returncode == 0
    assert conversations(home) == []
    assert "Recording is off" in hearth(home, "history", "list", env={"HEARTH_HISTORY": "off"}).stdout
    bad = hearth(home, "history", "list", env={"HEARTH_HISTORY": "sometimes"})
    assert bad.returncode == 1 and "history" in bad.stderr


def test_conversations_older_than_history_days_are_deleted(home: Path) -> None:
    assert hearth(home, "run", "smollm2:135m", "An ancient question", *FAST).returncode == 0
    conn = sqlite3.connect(home / "history" / "history.db")
    conn.execute("UPDATE conversations SET updated_at = '2001-01-01T00:00:00.000+00:00'")
    conn.commit()
    conn.close()
    assert len(conversations(home)) == 1  # kept forever by default
    assert hearth(home, "history", "list", env={"HEARTH_HISTORY_DAYS": "30"}).returncode == 0
    assert conversations(home) == []


def test_chat_is_recorded_continued_and_forked(home: Path) -> None:
    child = chat(home, "-o", "temperature=0", "-o", "num_predict=24")
    child.sendline("My name is Zorblax. Say hi.")
    child.expect(">>> ")
    child.sendline("/clear")  # the next question starts a new conversation
    child.expect("Cleared")
    child.sendline("What is two plus two?")
    child.expect(">>> ")
    child.sendline("/bye")
    child.expect(pexpect.EOF)
    listed = conversations(home)
    assert [c["message_count"] for c in listed] == [2, 2]
    zorblax = listed[1]["id"]

    child = chat(home, "--continue", zorblax[:6], "-o", "num_predict=24",
                 first=rf"Continuing conversation {zorblax} \(2 messages\)")
    child.sendline("What is my name?")
    child.expect(">>> ")
    child.sendline("/bye")
    child.expect(pexpect.EOF)
    recorded = json.loads(hearth(home, "history", "show", zorblax, "--json").stdout)["messages"]
    assert [m["role"] for m in recorded] == ["user", "assistant", "user", "assistant"]
    assert recorded[3]["stats"]["prompt_tokens"] > recorded[1]["stats"]["prompt_tokens"] + 5  # it saw turn one

    # Message 3 is a question: the fork keeps messages 1-2 and asks it again.
    child = chat(home, "--fork", zorblax, "--at", "3", "-o", "num_predict=8",
                 first=rf"Forked at message 3 of conversation {zorblax}[\s\S]*?\r\n>>> What is my name\?\r\n")
    child.sendline("/bye")
    child.expect(pexpect.EOF)
    fork = conversations(home)[0]
    assert (fork["parent_id"], fork["parent_at"], fork["message_count"]) == (zorblax, 2, 4)
    assert len(json.loads(hearth(home, "history", "show", zorblax, "--json").stdout)["messages"]) == 4

    latest = chat(home, "--continue", "--no-history", first=rf"Continuing conversation {fork['id']}")  # the latest
    latest.sendline("/bye")
    latest.expect(pexpect.EOF)
    wrong = hearth(home, "chat", "--continue", "smollm2:135m")
    assert wrong.returncode == 1 and "put the model first" in wrong.stderr


def test_replay_shows_another_models_answers_side_by_side(home: Path, tmp_path: Path) -> None:
    assert hearth(home, "run", "smollm2:135m", "Name a fruit.", *FAST).returncode == 0
    (tmp_path / "Modelfile").write_text("FROM smollm2:135m\nSYSTEM Answer like a pirate.\n")
    assert hearth(home, "create", "pirate", "-f", str(tmp_path / "Modelfile")).returncode == 0
    original = conversations(home)[0]
    shown = hearth(home, "history", "replay", original["id"], "--model", "pirate", *FAST, "--no-history")
    assert shown.returncode == 0, shown.stderr
    assert "── 1. Name a fruit." in shown.stdout and "│" in shown.stdout
    header = next(line for line in shown.stdout.splitlines() if "│" in line)
    assert header.split("│")[0].strip() == "smollm2:135m" and header.split("│")[1].strip() == "pirate:latest"
    assert len(conversations(home)) == 1  # --no-history
    result = json.loads(hearth(home, "history", "replay", original["id"][:5], "-m", "pirate", *FAST,
                               "--json").stdout)
    [turn] = result["turns"]
    assert turn["question"] == "Name a fruit." and turn["recorded"]["model"] == "smollm2:135m"
    assert turn["replayed"]["model"] == "pirate:latest" and 0 < turn["replayed"]["eval_count"] <= 12
    replayed = conversations(home)[0]
    assert (replayed["source"], replayed["parent_id"], replayed["model"]) == ("replay", original["id"],
                                                                              "pirate:latest")
