"""What every route shares: the service, the settings, the metrics, and the one generation pipeline."""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from hearth.config import Settings
from hearth.errors import ClientGoneError, HearthError
from hearth.server.grounding import citing, with_sources
from hearth.server.metrics import Metrics
from hearth.server.native import NativeRequest
from hearth.server.streaming import Encoder, EventStream, Feed, collect, open_generation, run_blocking
from hearth.service import Generation, Grounded, Hearth
from hearth.types import Answer

log = logging.getLogger("hearth.server")
CLIENT_CLOSED = 499
Whole = Callable[[str, Answer], dict[str, Any]]  # a whole (non-streamed) answer in one protocol


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

    def _start(self, native: NativeRequest, cancel: threading.Event, grounding: list[Grounded]) -> Generation:
        if native.messages is not None:
            messages = native.messages
            if native.documents:  # the question framed with the collection's passages (server/grounding.py)
                grounding.append(self.service.ground(native.model, messages, native.documents))
                messages = grounding[0].messages
            return self.service.chat(native.model, messages, native.options, keep_alive=native.keep_alive,
                                     turn=native.turn, cancel=cancel)
        return self.service.generate(native.model, native.prompt or "", native.options, system=native.system,
                                     raw=native.raw, keep_alive=native.keep_alive)

    async def answer(self, native: NativeRequest, request: Request, encoder: Callable[[str], Encoder],
                     whole: Whole, *, after: Callable[[Generation, Answer], None] | None = None) -> Response:
        """Run one generation and answer with a stream (`encoder`) or one JSON object (`whole`).

        `after` runs on a thread once the answer is complete (to store it); without it a `conversation_id`
        records the exchange in the history.
        """
        cancel = threading.Event()  # set if the client hangs up while its prompt is being prepared
        grounding: list[Grounded] = []
        try:
            generation = await open_generation(lambda: self._start(native, cancel, grounding), request.receive, cancel)
        except ClientGoneError:
            return Response(status_code=CLIENT_CLOSED)
        if grounding:
            encoder, whole = citing(encoder, grounding[0]), with_sources(whole, grounding[0])
        try:
            feed = Feed(generation, self.metrics.finished)
        except BaseException:
            generation.close()
            raise
        self.metrics.started()
        self.feeds.add(feed)
        if after is not None:
            feed.after = partial(after, generation)
        elif native.conversation_id and native.messages is not None and self.service.conversations.enabled:
            feed.after = partial(self._record, native, generation)
        if native.stream:
            return EventStream(feed, encoder(generation.model))
        try:
            answer = await collect(feed, request.receive)
        except HearthError:
            if feed.abandoned:  # nobody to tell; 499 ("client closed request") keeps it out of the 5xx counts
                return Response(status_code=CLIENT_CLOSED)
            raise
        if feed.after is not None:
            await run_blocking(feed.after, answer)  # 409 if the client rewrote the recorded past
        return JSONResponse(whole(generation.model, answer))

    def _record(self, native: NativeRequest, generation: Generation, answer: Answer) -> None:
        """Store the exchange under the client's conversation id (see docs/history.md)."""
        try:
            self.service.conversations.record_exchange(native.conversation_id or "", native.messages or [],
                                                       generation, answer)
        except HearthError as err:
            log.warning("not recorded in the history: %s", err.message)
            raise
