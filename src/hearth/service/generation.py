"""A generation in progress: notices first, then the engine's events, then the model handed back.

A `Generation` is also the one consumer of its own events: as they pass (to an iterating caller or to a
`start` sink) it keeps the answer's text, thinking and tool calls, so every surface reads the finished
`Answer` from it instead of collecting events again. Its events come from a `Source`: a job on a local
model's worker (`LocalSource`), or a request to a remote engine (`hearth.service.remotes`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Protocol

from hearth.chat.parse import OutputParser
from hearth.engine import Job
from hearth.errors import EngineError
from hearth.options import Options
from hearth.service.loaded import LoadedModel
from hearth.types import Answer, Done, Event, Notice, Sink, TextChunk, ThinkingChunk, ToolCall, ToolCallEvent


class Source(Protocol):
    """Where a generation's events come from."""

    @property
    def name(self) -> str:
        """The model name that answers."""

    @property
    def options(self) -> Options:
        """The options in effect."""

    @property
    def alive(self) -> bool:
        """False once whatever produces the events is gone (a dead worker, a lost connection)."""

    def stream(self) -> Iterator[Event]:
        """The events, blocking, ending with Done."""

    def submit(self, sink: Sink) -> None:
        """Deliver the events to `sink` from another thread."""

    def cancel(self) -> None:
        """Stop at the next step (a Done('cancelled') still arrives)."""


class LocalSource:
    """A job on a local model's worker process."""

    def __init__(self, loaded: LoadedModel, job: Job) -> None:
        self.loaded = loaded
        self.job = job

    @property
    def name(self) -> str:
        """The model name that answers."""
        return self.loaded.name

    @property
    def options(self) -> Options:
        """The options in effect."""
        return self.job.options

    @property
    def alive(self) -> bool:
        """False once the worker process has died."""
        return bool(self.loaded.client.alive)

    def stream(self) -> Iterator[Event]:
        """The worker's events for the job."""
        return self.loaded.client.stream(self.job)

    def submit(self, sink: Sink) -> None:
        """Run the job, its events going to `sink`."""
        self.loaded.client.submit(self.job, sink)

    def cancel(self) -> None:
        """Cancel the job."""
        self.loaded.client.cancel(self.job.id)


class Generation:
    """One request's stream of events. Iterate it (blocking), `consume` it, or `start(sink)` it in the background."""

    def __init__(self, source: Source, notices: list[Notice], release: Callable[[], None], load_ns: int,
                 parser: OutputParser | None = None) -> None:
        self.source = source
        self.parser = parser
        self.notices = notices
        self._release = release
        self._released = threading.Event()
        self._lock = threading.Lock()
        self.load_ns = load_ns
        self.done: Done | None = None
        self._text: list[str] = []
        self._thinking: list[str] = []
        self._calls: list[ToolCall] = []

    @property
    def model(self) -> str:
        """The model name that answered."""
        return self.source.name

    @property
    def options(self) -> Options:
        """The options in effect: the model's defaults with the request's laid over them."""
        return self.source.options

    @property
    def remote(self) -> bool:
        """Whether a remote engine answers (its failures are the remote's, not a local worker's)."""
        return not isinstance(self.source, LocalSource)

    @property
    def worker_alive(self) -> bool:
        """False once the worker process (or remote connection) serving this generation is gone."""
        return self.source.alive

    @property
    def answer(self) -> Answer:
        """What has been generated so far (the whole answer once `done` is set)."""
        return Answer("".join(self._text), self.done or Done("cancelled"), "".join(self._thinking),
                      tuple(self._calls))

    def _finish(self, event: Done) -> Done:
        if self.done is event:
            return event
        event.stats.load_ns = self.load_ns
        self.done = event
        self._give_back()
        return event

    def _give_back(self) -> None:
        with self._lock:
            if self._released.is_set():
                return
            self._released.set()
        self._release()

    def _split(self, event: Event) -> list[Event]:
        """Run answer text through the output parser (thinking and tool calls come out typed), keeping them."""
        if isinstance(event, Done):
            tail = self.parser.finish() if self.parser is not None and event.reason != "error" else []
            out = [*tail, event]
        elif isinstance(event, TextChunk) and self.parser is not None:
            out = self.parser.feed(event.text)
        else:
            out = [event]
        for item in out:
            if isinstance(item, TextChunk):
                self._text.append(item.text)
            elif isinstance(item, ThinkingChunk):
                self._thinking.append(item.text)
            elif isinstance(item, ToolCallEvent):
                self._calls.append(item.call)
            elif isinstance(item, Done):
                self._finish(item)
        return out

    def __iter__(self) -> Iterator[Event]:
        yield from self.notices
        try:
            for raw in self.source.stream():
                for event in self._split(raw):
                    yield event
                    if isinstance(event, Done):
                        return
        finally:
            self._give_back()

    def consume(self, on_event: Sink | None = None) -> Answer:
        """Run to the end (passing each event to `on_event`) and return the answer; EngineError if it failed.

        Interrupting it (Ctrl-C) stops the generation and hands the model back.
        """
        events = iter(self)
        try:
            for event in events:
                if on_event is not None:
                    on_event(event)
        finally:
            events.close()  # type: ignore[attr-defined]
        if self.done is None or self.done.reason == "error":
            raise EngineError(self.done.error if self.done and self.done.error else "the model stopped unexpectedly")
        return self.answer

    def start(self, sink: Sink) -> None:
        """Run in the background: every event (notices included) goes to `sink`, from another thread."""
        for notice in self.notices:
            sink(notice)

        def relay(raw: Event) -> None:
            for event in self._split(raw):
                sink(event)

        try:
            self.source.submit(relay)
        except Exception:
            self._give_back()
            raise

    def cancel(self) -> None:
        """Stop generating at the next step (a final Done('cancelled') still arrives)."""
        self.source.cancel()

    def close(self) -> None:
        """Hand the model back without waiting (for requests that never started)."""
        self._give_back()

    def text(self) -> str:
        """Run to the end and return the whole answer's text (raises if it ended in an error)."""
        return self.consume().text


ChatFn = Callable[..., Generation]  # the shape of `Hearth.chat`, for the loops built on it
