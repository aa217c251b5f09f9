"""Conversations: the one place that records, resumes, forks, replays and deletes the history.

Every surface (the terminal chat, `hearth run`, the HTTP APIs, the web page) goes through `Conversations`,
so "is history on?", conversation ids, forks and the 409 rule ("the client rewrote the recorded past")
live here only. Recording never stops an answer: a recorder that cannot write says so once (a warning
string for the surface to show) and goes on unrecorded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hearth.config import Settings
from hearth.errors import HearthError, InvalidRequestError, NotFoundError
from hearth.history import (
    Conversation,
    Entry,
    History,
    Hit,
    ModelUsed,
    StoredResponse,
    Summary,
    check_id,
    default_path,
    open_history,
    to_json,
    to_markdown,
)
from hearth.options import Options
from hearth.paths import hearth_home
from hearth.service.generation import ChatFn, Generation, LocalSource
from hearth.store import BUNDLED_NAME
from hearth.types import Answer, Message, Sink

LATEST = "\x00latest"  # "the most recent conversation" (a bare `hearth chat --continue`)


def model_used(generation: Generation, *, raw: bool = False) -> ModelUsed:
    """The model name, weights digest, chat template and every option in effect for `generation`.

    The options are those the answer ran with (the model's defaults under the request's), plus the
    context size the model was loaded with; a persona's LoRA adapters and system prompt are part of them.
    A remote model is recorded with where it ran (`remote`: its URL, API and model id there) and the
    options that were sent.
    """
    source = generation.source
    if not isinstance(source, LocalSource):
        remote = getattr(source, "remote", None)
        where = {"url": remote.url, "api": remote.api, "model": remote.model} if remote is not None else {}
        return ModelUsed(generation.model, "", None, {**generation.options.requested(), "remote": where})
    loaded = source.loaded
    manifest = loaded.manifest
    parameters = generation.options.values()
    parameters["num_ctx"] = loaded.n_ctx
    if manifest.adapters:
        parameters["adapters"] = list(manifest.adapters)
    if manifest.system:
        parameters["model_system"] = manifest.system
    return ModelUsed(manifest.name, manifest.digest, None if raw else loaded.template.source, parameters)


def _answer_entry(generation: Generation, answer: Answer, *, raw: bool = False) -> Entry:
    return Entry("assistant", answer.text, model_used(generation, raw=raw), answer.done.stats, answer.done.reason)


class Recorder:
    """Records one conversation as it happens, creating it at the first answer (None history: records nothing)."""

    def __init__(self, history: History | None, conversation_id: str | None = None, system: str | None = None,
                 source: str = "chat", parent_id: str | None = None) -> None:
        self.history = history
        self.conversation_id = conversation_id
        self.recorded_system = system  # the system prompt the record already holds
        self.source = source
        self.parent_id = parent_id

    @property
    def recording(self) -> bool:
        """Whether answers are still being recorded."""
        return self.history is not None

    def turn(self, system: str | None, question: str, answer: Answer, generation: Generation) -> str | None:
        """Record a question and its answer (and the system prompt, if it changed) at once; a warning if not."""
        if self.history is None:
            return None
        entries = [Entry("system", system)] if system and system != self.recorded_system else []
        entries += [Entry("user", question), _answer_entry(generation, answer)]
        try:
            if self.conversation_id is None:
                self.conversation_id = self.history.start(self.source, entries, parent_id=self.parent_id)
            else:
                self.history.append(self.conversation_id, entries)
            self.recorded_system = system or self.recorded_system
        except HearthError as err:
            self.close()
            return f"history: {err.message}; the rest of this conversation is not recorded"
        return None

    def new_conversation(self) -> None:
        """After /clear: the next answer starts a new conversation."""
        self.conversation_id, self.recorded_system = None, None

    def close(self) -> None:
        """Stop recording and close the database."""
        if self.history is not None:
            self.history.close()
            self.history = None


@dataclass
class ChatStart:
    """How a chat begins: its model, system prompt, earlier messages, recorder, and a question to answer."""

    model: str
    system: str | None
    recorder: Recorder
    messages: list[Message] = field(default_factory=list)
    pending: str | None = None  # a forked conversation's last question, still to be answered
    note: str | None = None  # "Continuing conversation ..." for the surface to show
    warning: str | None = None  # the history could not be opened: this chat is not recorded


@dataclass(frozen=True)
class ReplayTurn:
    """One replayed question: the recorded answer beside the new one."""

    number: int
    question: str
    recorded_model: str
    recorded: str
    answer: Answer
    model: str


@dataclass(frozen=True)
class Deleted:
    """How many conversations were deleted, and whether their text has left every database file."""

    count: int
    complete: bool


class Conversations:
    """The recorded conversations of this computer (one SQLite database under HEARTH_HOME)."""

    def __init__(self, settings: Settings, home: Callable[[], Path] = hearth_home) -> None:
        self.settings = settings
        self._home = home

    @property
    def enabled(self) -> bool:
        """Whether new answers are recorded (the `history` setting)."""
        return self.settings.history

    @property
    def path(self) -> Path:
        """Where the database is (a SQLite file: Datasette and sqlite3 can open it)."""
        return default_path(self._home())

    @staticmethod
    def check_id(conversation_id: object) -> str:
        """A client-chosen id, checked (InvalidRequestError naming `conversation_id` if it is not valid)."""
        return check_id(conversation_id)

    def open(self) -> History:
        """The database itself (pruned of conversations older than `history_days`); the caller closes it."""
        return open_history(self.settings, self._home())

    @contextmanager
    def _db(self) -> Iterator[History]:
        history = self.open()
        try:
            yield history
        finally:
            history.close()

    # -- reading --------------------------------------------------------------------------------------------
    def list(self, limit: int = 20, offset: int = 0) -> list[Summary]:
        """Conversations, most recently updated first."""
        with self._db() as db:
            return db.list(limit, offset)

    def count(self) -> int:
        """How many conversations there are."""
        with self._db() as db:
            return db.count()

    def get(self, ref: str) -> Conversation:
        """One conversation (by id or a unique prefix of 4+ characters) with all its messages."""
        with self._db() as db:
            return db.get(ref)

    def branches(self, ref: str) -> list[Summary]:
        """The conversations forked from `ref` (regenerated or edited versions of it), oldest first."""
        with self._db() as db:
            return db.branches(ref)

    def search(self, text: str, limit: int = 20) -> list[Hit]:
        """Messages containing every word of `text`, best matches first."""
        with self._db() as db:
            return db.search(text, limit)

    def search_conversations(self, text: str, limit: int = 20) -> list[tuple[Summary, str]]:
        """Conversations with a message containing every word of `text`, best first, each with the best
        message's snippet (one database session for all of them)."""
        with self._db() as db:
            found: dict[str, tuple[Summary, str]] = {}
            for hit in db.search(text, limit * 4):
                if hit.conversation_id not in found and len(found) < limit:
                    found[hit.conversation_id] = (db.get(hit.conversation_id).summary, hit.highlighted())
            return list(found.values())

    def export(self, ref: str, fmt: str = "md") -> str:
        """A conversation as Markdown ("md") or JSON with everything recorded ("json")."""
        if fmt not in ("md", "json"):
            raise InvalidRequestError("export as md or json", field="format")
        found = self.get(ref)
        return to_markdown(found) if fmt == "md" else to_json(found)

    # -- changing -------------------------------------------------------------------------------------------
    def rename(self, ref: str, title: str) -> Summary:
        """Give a conversation a title of its own (empty: back to its first question)."""
        with self._db() as db:
            return db.get(db.rename(ref, title)).summary

    def fork(self, ref: str, at: int, *, source: str = "chat") -> str:
        """A new conversation holding messages 1..`at` of `ref`; its id."""
        with self._db() as db:
            return db.fork(ref, at, source=source)

    def delete(self, refs: Sequence[str]) -> Deleted:
        """Delete conversations for good (their text is erased from the files, not just hidden)."""
        with self._db() as db:
            return Deleted(db.delete(refs), db.erased_completely)

    def delete_all(self) -> Deleted:
        """Delete every conversation, and the terminal chat's line-editing history with them."""
        with self._db() as db:
            count = db.delete_all()
            (self._home() / "chat_history").unlink(missing_ok=True)
            return Deleted(count, db.erased_completely)

    def prune(self, days: int) -> Deleted:
        """Delete conversations not updated for `days` days."""
        with self._db() as db:
            return Deleted(db.prune(days), db.erased_completely)

    # -- the Responses API's stored responses ---------------------------------------------------------------
    def response(self, response_id: str) -> StoredResponse:
        """A stored response (NotFoundError when unknown, or when history is off)."""
        if not self.enabled:
            raise NotFoundError(f"response {response_id[:80]!r} not found",
                                hint="the history setting is off, so no response is stored")
        with self._db() as db:
            return db.get_response(response_id)

    def delete_response(self, response_id: str) -> None:
        """Forget a stored response."""
        self.response(response_id)
        with self._db() as db:
            db.delete_response(response_id)

    def record_response(self, response_id: str, body: dict[str, Any], items: list[dict[str, Any]],
                        messages: Sequence[Message], generation: Generation, answer: Answer, *,
                        parent: StoredResponse | None = None) -> StoredResponse | None:
        """Store a response (its object and the items to continue from) with its new messages and answer.

        None if history is off.

        A continuation of the latest response of a conversation extends it; one from an earlier
        response forks the conversation there.
        """
        if not self.enabled:
            return None
        entries = [Entry(m.role, m.content) for m in messages] + [_answer_entry(generation, answer)]
        with self._db() as db:
            return db.record_response(response_id, body, items, entries, parent=parent)

    # -- recording ------------------------------------------------------------------------------------------
    def record_exchange(self, conversation_id: str, messages: Sequence[Message], generation: Generation,
                        answer: Answer, *, source: str = "api") -> bool:
        """Record an API request that resends the whole conversation, and its answer; False if history is off.

        ConflictError (409) if the recorded messages are not a prefix of `messages`.
        """
        if not self.enabled:
            return False
        with self._db() as db:
            db.record_exchange(check_id(conversation_id), messages, _answer_entry(generation, answer), source=source)
        return True

    def record_run(self, generation: Generation, answer: Answer, prompt: str, *, system: str | None = None,
                   raw: bool = False, record: bool = True) -> str | None:
        """Record a one-shot answer as a conversation of its own; a warning (never an error) if it fails."""
        if not record or not self.enabled:
            return None
        entries = [Entry("system", system)] if system and not raw else []
        entries += [Entry("user", prompt), _answer_entry(generation, answer, raw=raw)]
        try:
            with self._db() as db:
                db.start("run", entries)
        except HearthError as err:
            return f"the answer was not recorded in the history: {err.message}"
        return None

    def recorder(self, *, record: bool = True, source: str = "chat", parent_id: str | None = None,
                 conversation_id: str | None = None, system: str | None = None) -> tuple[Recorder, str | None]:
        """A recorder for a new conversation, and a warning if the history cannot be opened."""
        if not record or not self.enabled:
            return Recorder(None), None
        try:
            history = self.open()
        except HearthError as err:
            return Recorder(None), f"history: {err.message}; this conversation is not recorded"
        return Recorder(history, conversation_id, system, source, parent_id), None

    def begin(self, model: str | None, system: str | None, *, record: bool = True, resume: str | None = None,
              fork: str | None = None, at: int | None = None) -> ChatStart:
        """How a chat starts: fresh, continuing a recorded conversation (`resume`, or LATEST), or forking one."""
        if resume is not None and fork is not None:
            raise InvalidRequestError("continue a conversation or fork one, not both")
        if at is not None and fork is None:
            raise InvalidRequestError("`at` goes with fork", field="at")
        if resume is None and fork is None:
            recorder, warning = self.recorder(record=record)
            return ChatStart(model or BUNDLED_NAME, system, recorder, warning=warning)
        with self._db() as db:
            conversation = _find(db, resume, model) if fork is None else db.get(fork or "")
            kept = len(conversation.messages) if at is None else at
            if not 1 <= kept <= len(conversation.messages):
                raise InvalidRequestError(f"conversation {conversation.id} has {len(conversation.messages)} "
                                          f"messages; --at must be between 1 and {len(conversation.messages)}")
            earlier = [m.as_message() for m in conversation.messages[:kept]]
            pending = earlier.pop().content if fork is not None and earlier[-1].role == "user" else None
            cid: str | None = conversation.id
            if fork is not None:
                cid = db.fork(conversation.id, len(earlier)) if record and self.enabled else None
        systems = [m.content for m in earlier if m.role == "system"]
        recorder, warning = self.recorder(record=record, conversation_id=cid, system=systems[-1] if systems else None)
        used = [m.model for m in conversation.messages if m.model]
        how = "Continuing" if fork is None else f"Forked at message {kept} of"
        return ChatStart(model or (used[-1] if used else BUNDLED_NAME), system or (systems[-1] if systems else None),
                         recorder, [m for m in earlier if m.role != "system"], pending,
                         f"{how} conversation {conversation.id} ({len(earlier)} messages).", warning)

    def replay(self, chat: ChatFn, ref: str, model: str, options: Options | None = None, *, record: bool = True,
               on_event: Sink | None = None) -> tuple[Conversation, Iterator[ReplayTurn]]:
        """Ask `model` the questions of a recorded conversation again (recorded as a new one, linked to it)."""
        original = self.get(ref)
        questions = [i for i, m in enumerate(original.messages) if m.role == "user"]
        if not questions:
            raise InvalidRequestError(f"conversation {original.id} has no questions to replay")
        return original, self._replay(chat, original, questions, model, options, record, on_event)

    def _replay(self, chat: ChatFn, original: Conversation, questions: list[int], model: str,
                options: Options | None, record: bool, on_event: Sink | None) -> Iterator[ReplayTurn]:
        recorder, _ = self.recorder(record=record, source="replay", parent_id=original.id)
        messages = original.messages
        system: str | None = None
        context: list[Message] = []
        try:
            for number, index in enumerate(questions, 1):
                system = next((m.content for m in reversed(messages[:index]) if m.role == "system"), system)
                question = messages[index].content
                before = messages[index + 1] if index + 1 < len(messages) else None
                generation = chat(model, ([Message("system", system)] if system else []) + context
                                   + [Message("user", question)], options)
                answer = generation.consume(on_event)
                context += [Message("user", question), Message("assistant", answer.text)]
                recorder.turn(system, question, answer, generation)
                old = before.content if before is not None and before.role == "assistant" else ""
                yield ReplayTurn(number, question, (before.model if before is not None else None) or "(recorded)",
                                 old, answer, generation.model)
        finally:
            recorder.close()


def _find(history: History, resume: str | None, model: str | None) -> Conversation:
    if resume == LATEST:
        latest = history.latest()
        if latest is None:
            raise NotFoundError("there is no recorded conversation to continue yet",
                                hint="start one with `hearth chat`")
        return history.get(latest)
    try:
        return history.get(resume or "")
    except NotFoundError as err:
        if model is None and ":" in (resume or ""):
            err.hint = ("to continue the latest conversation with a model, put the model first: "
                        f"hearth chat {resume} --continue")
        raise
