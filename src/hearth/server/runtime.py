"""What every route shares: the service, the settings, the metrics, and the one generation pipeline."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from hearth.config import Settings
from hearth.errors import HearthError
from hearth.server.metrics import Metrics
from hearth.server.native import NativeRequest
from hearth.server.streaming import Encoder, EventStream, Feed, collect, open_generation, run_blocking
from hearth.service import Generation, Hearth
from hearth.types import Done

log = logging.getLogger("hearth.server")
CLIENT_CLOSED = 499
Whole = Callable[[str, str, Done], dict[str, Any]]


@dataclass
class Runtime:
    """The server's state, handed to the route factories."""

    service: Hearth
    settings: Settings
    metrics: Metrics = field(default_factory=Metrics)
    feeds: weakref.WeakSet[Feed] = field(default_factory=weakref.WeakSet)

    def interrupt_all(self, reason: str) -> None:
        """Stop every running generation (at shutdown: each stream then ends with an error event)."""
        for feed in list(self.feeds):
            feed.cancel(reason)

    def _start(self, native: NativeRequest) -> Generation:
        if native.messages is not None:
            return self.service.chat(native.model, native.messages, native.options, keep_alive=native.keep_alive,
                                     turn=native.turn)
        return self.service.generate(native.model, native.prompt or "", native.options, system=native.system,
                                     raw=native.raw, keep_alive=native.keep_alive)

    async def answer(self, native: NativeRequest, request: Request, encoder: Callable[[str], Encoder],
                     whole: Whole) -> Response:
        """Run one generation and answer with a stream (`encoder`) or one JSON object (`whole`)."""
        generation = await open_generation(lambda: self._start(native))
        try:
            feed = Feed(generation, self.metrics.finished)
        except BaseException:
            generation.close()
            raise
        self.metrics.started()
        self.feeds.add(feed)
        if native.conversation_id and native.messages is not None and self.settings.history:
            feed.after = partial(self._record, native, generation)
        if native.stream:
            return EventStream(feed, encoder(generation.model))
        try:
            text, done = await collect(feed, request.receive)
        except HearthError:
            if feed.abandoned:  # nobody to tell; 499 ("client closed request") keeps it out of the 5xx counts
                return Response(status_code=CLIENT_CLOSED)
            raise
        if feed.after is not None:
            await run_blocking(feed.after, text, done)  # 409 if the client rewrote the recorded past
        body = whole(generation.model, text, done)
        if native.decorate is not None:
            native.decorate(body, feed.calls, "".join(feed.thinking))
        return JSONResponse(body)

    def _record(self, native: NativeRequest, generation: Generation, text: str, done: Done) -> None:
        """Store the exchange under the client's conversation id (see docs/history.md)."""
        from hearth.history import Entry, open_history
        from hearth.service.recording import model_used

        history = open_history(self.settings)
        try:
            history.record_exchange(native.conversation_id or "", native.messages or [],
                                    Entry("assistant", text, model_used(generation, native.options), done.stats,
                                          done.reason), source="api")
        except HearthError as err:
            log.warning("not recorded in the history: %s", err.message)
            raise
        finally:
            history.close()

    async def loaded_models(self) -> list[tuple[Any, int, dict[str, int]]]:
        """(LoadedModel, resident bytes, worker statistics) for each loaded model, read off the event loop."""
        scheduler = self.service.scheduler

        def stats(m: Any) -> dict[str, int]:
            try:  # slots in use, prompt-cache hits and tokens, straight from the worker
                return dict(m.client.call("stats", timeout=2.0))
            except HearthError:
                return {}

        def read() -> list[tuple[Any, int, dict[str, int]]]:
            return [(m, scheduler.memory(m), stats(m)) for m in scheduler.loaded()]

        return list(await run_blocking(read))
