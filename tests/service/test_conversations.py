"""Conversations through the service: record, resume, fork, the 409 rule, history off, replay, deletion."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hearth.config import Settings
from hearth.errors import ConflictError, InvalidRequestError
from hearth.history import Entry
from hearth.options import parse_options
from hearth.service import LATEST, Conversations, Hearth
from hearth.types import Message
from tests.conftest import private_hearth

MODEL = "smollm2:135m"
GREEDY = parse_options({"temperature": 0, "num_predict": 8})


@pytest.fixture(scope="module")
def hearth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hearth]:
    yield from private_hearth(tmp_path_factory, "service-conversations", num_parallel=1, num_ctx=1024)


@pytest.fixture
def log(tmp_path: Path) -> Conversations:
    return Conversations(Settings(), home=lambda: tmp_path)


def ask(hearth: Hearth, messages: list[Message]):  # noqa: ANN201 - (generation, answer)
    generation = hearth.chat(MODEL, messages, GREEDY)
    return generation, generation.consume()


def test_a_chat_is_recorded_with_the_options_it_ran_with_then_resumed(hearth: Hearth, log: Conversations) -> None:
    start = log.begin(None, "Be brief.")
    assert start.model == MODEL and start.recorder.recording and start.warning is None
    generation, answer = ask(hearth, [Message("system", "Be brief."), Message("user", "Name a colour.")])
    assert start.recorder.turn("Be brief.", "Name a colour.", answer, generation) is None
    cid = start.recorder.conversation_id
    assert cid is not None
    found = log.get(cid)
    assert [m.role for m in found.messages] == ["system", "user", "assistant"]
    used = found.messages[-1]
    assert used.model == MODEL and used.content == answer.text
    assert used.parameters is not None and used.parameters["temperature"] == 0 and used.parameters["num_ctx"] == 1024
    assert used.parameters["top_k"] == 40  # the model's defaults under the request's, all recorded

    again = log.begin(None, None, resume=LATEST)
    assert again.recorder.conversation_id == cid and again.system == "Be brief." and again.model == MODEL
    assert [m.content for m in again.messages] == ["Name a colour.", answer.text]
    generation, answer = ask(hearth, [Message("system", "Be brief."), *again.messages, Message("user", "Another?")])
    again.recorder.turn("Be brief.", "Another?", answer, generation)
    assert log.get(cid).summary.message_count == 5  # the system prompt is not recorded twice
    assert log.search("colour")[0].conversation_id == cid
    assert log.rename(cid, "  Colours  ").title == "Colours" and log.list()[0].title == "Colours"
    assert "Name a colour." in log.export(cid, "md") and log.export(cid, "json").startswith("{")
    with pytest.raises(InvalidRequestError):
        log.export(cid, "pdf")


def test_a_fork_keeps_the_start_and_leaves_the_last_question_to_answer(hearth: Hearth, log: Conversations) -> None:
    start = log.begin(None, None)
    generation, answer = ask(hearth, [Message("user", "Say one.")])
    start.recorder.turn(None, "Say one.", answer, generation)
    cid = start.recorder.conversation_id
    assert cid is not None
    forked = log.begin(None, None, fork=cid, at=1)
    assert forked.pending == "Say one." and forked.messages == [] and "Forked at message 1" in (forked.note or "")
    child = log.get(forked.recorder.conversation_id or "")
    assert child.summary.parent_id == cid and child.summary.parent_at == 0
    with pytest.raises(InvalidRequestError):
        log.begin(None, None, fork=cid, at=9)
    with pytest.raises(InvalidRequestError):
        log.begin(None, None, fork=cid, resume=cid)


def test_api_exchanges_follow_the_409_rule_and_check_ids(hearth: Hearth, log: Conversations) -> None:
    first = [Message("user", "Hi")]
    generation, answer = ask(hearth, first)
    assert log.record_exchange("client-1", first, generation, answer)
    later = [*first, Message("assistant", answer.text), Message("user", "More")]
    generation, more = ask(hearth, later)
    assert log.record_exchange("client-1", later, generation, more)
    assert [m.content for m in log.get("client-1").messages] == ["Hi", answer.text, "More", more.text]
    with pytest.raises(ConflictError):
        log.record_exchange("client-1", [Message("user", "A different past")], generation, more)
    for bad in ("a:b", "x" * 65, "../etc", ""):
        with pytest.raises(InvalidRequestError):
            log.record_exchange(bad, first, generation, answer)
        with pytest.raises(InvalidRequestError):
            Conversations.check_id(bad)


def test_history_off_records_nothing_anywhere(hearth: Hearth, tmp_path: Path) -> None:
    off = Conversations(Settings(history=False), home=lambda: tmp_path)
    generation, answer = ask(hearth, [Message("user", "Hi")])
    assert off.record_exchange("client-2", [Message("user", "Hi")], generation, answer) is False
    assert off.record_run(generation, answer, "Hi") is None
    start = off.begin(None, None)
    assert not start.recorder.recording and start.recorder.turn(None, "Hi", answer, generation) is None
    assert not off.path.exists()


def test_a_run_is_its_own_conversation_and_a_broken_database_only_warns(hearth: Hearth, log: Conversations,
                                                                        tmp_path: Path) -> None:
    generation, answer = ask(hearth, [Message("user", "Hi")])
    assert log.record_run(generation, answer, "Hi", system="Be brief.") is None
    [summary] = log.list()
    assert summary.source == "run" and summary.message_count == 3
    assert log.record_run(generation, answer, "Hi", record=False) is None and log.count() == 1

    broken_home = tmp_path / "broken"
    (broken_home / "history").mkdir(parents=True)
    (broken_home / "history" / "history.db").write_bytes(b"this is not a database" * 100)
    broken = Conversations(Settings(), home=lambda: broken_home)
    warning = broken.record_run(generation, answer, "Hi")
    assert warning and "not recorded" in warning
    start = broken.begin(None, None)
    assert start.warning and not start.recorder.recording


def test_replay_answers_again_and_links_the_new_record(hearth: Hearth, log: Conversations) -> None:
    generation, answer = ask(hearth, [Message("user", "Name a fruit.")])
    log.record_exchange("to-replay", [Message("user", "Name a fruit.")], generation, answer)
    original, turns = log.replay(hearth.chat, "to-replay", MODEL, GREEDY)
    [turn] = list(turns)
    assert original.id == "to-replay" and turn.question == "Name a fruit." and turn.recorded == answer.text
    assert turn.answer.text == answer.text  # greedy: the same model answers the same
    replayed = next(s for s in log.list() if s.source == "replay")
    assert replayed.parent_id == "to-replay"
    with pytest.raises(InvalidRequestError):
        log.replay(hearth.chat, log.fork("to-replay", 0), MODEL)  # no questions in it


def test_deleting_everything_also_forgets_the_typed_lines(log: Conversations, tmp_path: Path) -> None:
    (tmp_path / "chat_history").write_text("secret\n")
    with log.open() as db:
        db.start("chat", [Entry("user", "secret")])
    deleted = log.delete_all()
    assert deleted.count == 1 and deleted.complete and not (tmp_path / "chat_history").exists()
    assert log.search("secret") == []


def test_options_record_the_request_laid_over_the_model_defaults() -> None:
    request = parse_options({"temperature": 0.1})
    model = parse_options({"temperature": 0.5, "top_k": 7})
    merged = request.over(model)
    assert (merged.temperature, merged.top_k) == (0.1, 7) and merged.given == {"temperature", "top_k"}
    asked_default = parse_options({"temperature": 0.8}).over(model)  # 0.8 is also Options' own default...
    assert asked_default.temperature == 0.8  # ...but it was asked for, so it wins over the model's 0.5
