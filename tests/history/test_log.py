"""Recording, reading, searching, forking, exporting and really deleting conversations."""

from __future__ import annotations

import json
import re
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from hearth.errors import ConflictError, InvalidRequestError, NotFoundError
from hearth.history import MARK_END, MARK_START, Entry, History, to_json, to_markdown
from hearth.types import Message
from tests.history.conftest import USED, answer, file_bytes


def test_a_turn_is_recorded_with_its_model_and_statistics(history: History) -> None:
    cid = history.start("chat", [Entry("system", "Be brief."), Entry("user", "Why is the sky blue?"),
                                 answer("Rayleigh scattering.")])
    history.append(cid, [Entry("user", "And sunsets?"), answer("Longer path.", tokens=3)])
    [summary] = history.list()
    assert (summary.id, summary.source, summary.message_count, summary.model) == (cid, "chat", 5, "smollm2:135m")
    assert summary.title == "Why is the sky blue?" and re.fullmatch(r"[0-9a-f]{12}", cid)
    conversation = history.get(cid)
    assert [(m.position, m.role) for m in conversation.messages] == [
        (1, "system"), (2, "user"), (3, "assistant"), (4, "user"), (5, "assistant")]
    reply = conversation.messages[2]
    assert (reply.model, reply.model_digest, reply.parameters) == (USED.name, USED.digest, USED.parameters)
    assert reply.stats is not None and reply.stats.completion_tokens == 5 and reply.finish_reason == "stop"
    assert conversation.templates == {reply.template_digest: USED.template}
    assert conversation.messages[1].stats is None and conversation.messages[1].model is None


def test_ids_can_be_shortened_to_a_unique_prefix(history: History) -> None:
    ids = [history.start("run", [Entry("user", f"q{i}")], conversation_id=cid)
           for i, cid in enumerate(["abcd1111", "abcd2222", "ffff0000"])]
    assert history.resolve("ffff") == "ffff0000" and history.get("abcd2").id == "abcd2222"
    with pytest.raises(InvalidRequestError, match="several"):
        history.resolve("abcd")
    with pytest.raises(NotFoundError) as caught:
        history.resolve("ff")  # too short to be a prefix
    assert caught.value.hint and "hearth history list" in caught.value.hint
    assert history.latest() == ids[-1]


def test_full_text_search_finds_a_word_from_an_old_conversation(history: History) -> None:
    old = history.start("chat", [Entry("user", "How do I feed a sourdough starter?"), answer("Flour and water.")])
    for i in range(30):
        history.start("chat", [Entry("user", f"Question number {i} about cats"), answer(f"Answer {i}")])
    [hit] = history.search("sourdough")
    assert (hit.conversation_id, hit.position, hit.role) == (old, 1, "user")
    assert f"{MARK_START}sourdough{MARK_END}" in hit.snippet
    assert len(history.search("cat")) == 20  # stems: "cat" finds "cats"; limit 20 by default
    assert history.search("sour*")[0].conversation_id == old
    assert history.search('feed "starter') and history.search("feed OR NOT (") == []  # user text is never syntax
    with pytest.raises(InvalidRequestError):
        history.search("  ?! ")


def test_fork_copies_the_first_messages_and_remembers_its_parent(history: History) -> None:
    cid = history.start("chat", [Entry("user", "one"), answer("two"), Entry("user", "three"), answer("four")])
    fork = history.fork(cid[:6], 2)
    conversation = history.get(fork)
    assert [m.content for m in conversation.messages] == ["one", "two"]
    assert conversation.messages[1].model == "smollm2:135m"
    assert (conversation.summary.parent_id, conversation.summary.parent_at) == (cid, 2)
    history.append(fork, [Entry("user", "other"), answer("branch")])
    assert [m.content for m in history.get(cid).messages] == ["one", "two", "three", "four"]
    with pytest.raises(InvalidRequestError, match="between 1 and 4"):
        history.fork(cid, 5)


def test_api_exchanges_resend_the_conversation_and_only_new_messages_are_stored(history: History) -> None:
    first = [Message("user", "hi")]
    history.record_exchange("client-chosen-1", first, answer("hello"))
    second = [*first, Message("assistant", "hello"), Message("user", "how are you?")]
    history.record_exchange("client-chosen-1", second, answer("fine"))
    assert [m.content for m in history.get("client-chosen-1").messages] == ["hi", "hello", "how are you?", "fine"]
    with pytest.raises(ConflictError):
        history.record_exchange("client-chosen-1", [Message("user", "rewritten past")], answer("x"))
    with pytest.raises(InvalidRequestError):
        history.record_exchange("../../etc", first, answer("x"))


def test_deletion_leaves_no_text_in_the_database_files(history: History, tmp_path: Path) -> None:
    secret = "canary-7f3a9-marmalade"
    keep = history.start("chat", [Entry("user", "keep this one"), answer("kept")])
    gone = history.start("chat", [Entry("user", f"my secret is {secret}"), answer(f"noted: {secret}")])
    fork = history.fork(gone, 1)
    history.delete([fork])
    assert secret.encode() in file_bytes(tmp_path / "history")  # still in the conversation it was forked from
    history.delete([gone[:5]])
    assert history.erased_completely
    data = file_bytes(tmp_path / "history")
    for word in (secret, "marmalade", "canary"):
        assert word.encode() not in data, word
    assert history.search("marmalade") == [] and history.get(keep).messages[0].content == "keep this one"
    with pytest.raises(NotFoundError):
        history.get(gone)


def test_delete_all_and_automatic_deletion_after_n_days(tmp_path: Path) -> None:
    now = [datetime(2026, 1, 31, tzinfo=timezone.utc)]
    history = History(tmp_path / "h" / "history.db", clock=lambda: now[0])
    history.start("chat", [Entry("user", "from january first")])
    now[0] += timedelta(days=20)
    recent = history.start("chat", [Entry("user", "from february")])
    now[0] += timedelta(days=15)  # `old` was last updated 35 days ago, `recent` 15
    assert history.prune(0) == 0 and history.prune(30) == 1
    assert [s.id for s in history.list()] == [recent]
    assert b"january" not in file_bytes(tmp_path / "h")
    assert history.delete_all() == 1 and history.count() == 0
    with pytest.raises(InvalidRequestError):
        history.prune(-1)
    history.close()


def test_markdown_and_json_exports(history: History) -> None:
    cid = history.start("run", [Entry("system", "Be brief."), Entry("user", "Show code"),
                                answer("```python\nprint('unclosed fence')")])
    history.append(cid, [Entry("user", "Thanks"), answer("You're welcome.")])
    markdown = to_markdown(history.get(cid))
    headings = re.findall(r"^## (\d+)\. (\w+)", markdown, re.MULTILINE)
    assert headings == [("1", "System"), ("2", "User"), ("3", "Assistant"), ("4", "User"), ("5", "Assistant")]
    assert markdown.startswith("# Show code\n") and f"`{USED.digest}`" in markdown
    assert markdown.count("```") % 2 == 0  # the answer's open fence is closed, so it cannot swallow the rest
    assert "*30 prompt tokens, 5 answer tokens, 40.0 tokens/s*" in markdown  # 4 steps after the first token in 0.1 s
    data = json.loads(to_json(history.get(cid)))
    assert data["id"] == cid and [m["role"] for m in data["messages"]][:3] == ["system", "user", "assistant"]
    reply = data["messages"][2]
    assert reply["model_digest"] == USED.digest and reply["parameters"]["num_ctx"] == 4096
    assert reply["stats"]["completion_tokens"] == 5 and data["templates"][reply["template_digest"]] == USED.template


def test_two_writers_on_one_file_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    first, second = History(path), History(path)  # e.g. a terminal chat and the server
    cid = first.start("chat", [Entry("user", "shared")])

    def write(log: History, tag: str) -> None:
        for i in range(25):
            log.append(cid, [Entry("user", f"{tag}{i}"), answer("ok")])

    threads = [threading.Thread(target=write, args=(log, tag)) for log, tag in ((first, "a"), (second, "b"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    messages = first.get(cid).messages
    assert len(messages) == 101 and [m.position for m in messages] == list(range(1, 102))
    assert all(messages[i].role == "user" and messages[i + 1].role == "assistant" for i in range(1, 101, 2))
    first.close()
    second.close()
