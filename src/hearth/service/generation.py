"""A generation in progress: notices first, then the engine's events, then the model handed back."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from hearth.chat.parse import OutputParser
from hearth.engine import Job
from hearth.service.loaded import LoadedModel
from hearth.types import Done, Event, Notice, TextChunk, ToolCallEvent

Sink = Callable[[Event], None]


class Generation:
    """One request's stream of events. Iterate it (blocking), or `start(sink)` to receive them in a callback."""

    def __init__(self, loaded: LoadedModel, job: Job, notices: list[Notice],
                 release: Callable[[LoadedModel], None], load_ns: int, parser: OutputParser | None = None) -> None:
        self.loaded = loaded
        self.parser = parser
        self.tool_calls = 0
        self.job = job
        self.notices = notices
        self._release = release
        self._released = threading.Event()
        self._lock = threading.Lock()
        self.load_ns = load_ns
        self.done: Done | None = None

    @property
    def model(self) -> str:
        """The model name that answered."""
        return self.loaded.name

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
        self._release(self.loaded)

    def _split(self, event: Event) -> list[Event]:
        """Run answer text through the output parser (thinking and tool calls come out typed)."""
        if isinstance(event, Done):
            tail = self.parser.finish() if self.parser is not None and event.reason != "error" else []
            out = [*tail, self._finish(event)]
        elif isinstance(event, TextChunk) and self.parser is not None:
            out = self.parser.feed(event.text)
        else:
            out = [event]
        self.tool_calls += sum(1 for e in out if isinstance(e, ToolCallEvent))
        return out

    def __iter__(self) -> Iterator[Event]:
        yield from self.notices
        try:
            for raw in self.loaded.client.stream(self.job):
                for event in self._split(raw):
                    yield event
                    if isinstance(event, Done):
                        return
        finally:
            self._give_back()

    def start(self, sink: Sink) -> None:
        """Run in the background: every event (notices included) goes to `sink`, from another thread."""
        for notice in self.notices:
            sink(notice)

        def relay(raw: Event) -> None:
            for event in self._split(raw):
                sink(event)

        try:
            self.loaded.client.submit(self.job, relay)
        except Exception:
            self._give_back()
            raise

    def cancel(self) -> None:
        """Stop generating at the next step (a final Done('cancelled') still arrives)."""
        self.loaded.client.cancel(self.job.id)

    def close(self) -> None:
        """Hand the model back without waiting (for requests that never started)."""
        self._give_back()

    def text(self) -> str:
        """Run to the end and return the whole answer (raises if it ended in an error)."""
        from hearth.errors import EngineError

        parts = [e.text for e in self if isinstance(e, TextChunk)]
        if self.done is not None and self.done.reason == "error":
            raise EngineError(self.done.error or "generation failed")
        return "".join(parts)
