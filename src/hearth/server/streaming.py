"""From a `Generation` (events on a worker-reader thread) to HTTP (an asyncio event loop), both ways.

* `open_generation` runs the blocking part of a request (acquire a model, maybe load it, render and
  tokenize the prompt) on a thread, so the event loop never waits; if the request is cancelled meanwhile,
  the model is handed back.
* `Bridge` is the one way from a worker thread to the event loop (`call_soon_threadsafe` into a queue);
  `Feed` receives a generation's events through one and yields them on the event loop, so the worker is
  never slowed by a slow client. `/api/pull`'s progress travels the same way.
* `EventStream` is the streaming response (SSE or NDJSON, by the encoder it is given) and `collect` the
  non-streaming one. Both watch the connection: when the client goes away they cancel the generation,
  which leaves the batch at the next decoding step and frees its slot for the next request.
* A generation that ends in an error after the stream started ends it with one in-band error event.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any, Generic, Protocol, TypeVar

import anyio.to_thread
from starlette.responses import Response

from hearth import errors
from hearth.service import Generation
from hearth.types import Answer, Done, Event, TextChunk, ThinkingChunk, ToolCall, ToolCallEvent

T = TypeVar("T")
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class Encoder(Protocol):
    """Turns a stream's events into bytes in one protocol (b"" for what the protocol does not carry)."""

    media_type: str

    def text(self, text: str) -> bytes: ...

    def thinking(self, text: str) -> bytes: ...

    def tool_call(self, call: ToolCall) -> bytes: ...

    def end(self, done: Done) -> bytes: ...

    def error(self, message_text: str, code: str | None) -> bytes: ...


async def run_blocking(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a blocking service call on a worker thread."""
    return await anyio.to_thread.run_sync(fn, *args)


async def open_generation(start: Callable[[], Generation], receive: Receive | None = None,
                          cancel: threading.Event | None = None) -> Generation:
    """Call `start` on a thread; if the caller is cancelled meanwhile, give the model back.

    With `receive` and `cancel`, a client that disconnects while `start` runs sets `cancel`, which the
    service checks as it prepares the prompt, so the work stops instead of finishing for nobody.
    """
    opened: list[Generation] = []

    def call() -> Generation:
        generation = start()
        opened.append(generation)
        return generation

    watcher = None
    if receive is not None and cancel is not None:
        watcher = asyncio.ensure_future(_until_disconnect(receive))
        watcher.add_done_callback(lambda task: None if task.cancelled() else cancel.set())
    try:
        return await anyio.to_thread.run_sync(call)
    except BaseException:
        for generation in opened:
            generation.close()
        raise
    finally:
        if watcher is not None:
            watcher.cancel()


class Bridge(Generic[T]):
    """Items put from any thread, taken on the event loop that made the bridge."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[T] = asyncio.Queue()

    def put(self, item: T) -> None:
        """Hand `item` to the loop (from any thread; dropped if the loop has closed: the server is stopping)."""
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    async def get(self) -> T:
        """The next item, in order."""
        return await self._queue.get()


class Feed:
    """A started generation's events, delivered on the event loop."""

    def __init__(self, generation: Generation, on_done: Callable[[Done], None] | None = None) -> None:
        self.generation = generation
        self.done: Done | None = None
        self.interrupted: str | None = None  # why the server stopped it, if it did
        self.abandoned = False  # the client went away
        self._on_done = on_done
        self._bridge: Bridge[Event] = Bridge()
        self.after: Callable[[Answer], None] | None = None  # runs (on a thread) after a good ending
        generation.start(self._sink)

    def _sink(self, event: Event) -> None:  # on the worker-reader thread
        if isinstance(event, Done) and self._on_done is not None:
            self._on_done(event)
        self._bridge.put(event)

    @property
    def answer(self) -> Answer:
        """What the generation has produced (the whole answer once `done` is set)."""
        return self.generation.answer

    async def events(self) -> AsyncIterator[Event]:
        """Every event up to and including the final `Done`."""
        while self.done is None:
            event = await self._bridge.get()
            if isinstance(event, Done):
                self.done = event
            yield event

    def cancel(self, reason: str | None = None) -> None:
        """Stop the generation if it is still running (`reason`: the server's, when it is not the client's)."""
        if self.done is None:
            if reason is not None:
                self.interrupted = reason
            self.generation.cancel()

    def failure(self) -> errors.HearthError:
        """The error a generation that ended badly stands for (by the worker's state, not the message)."""
        done = self.done
        if done is not None and done.reason == "cancelled" and self.interrupted:
            return errors.WorkerCrashedError(self.interrupted, hint="send the request again in a moment")
        if done is not None and done.reason == "cancelled":
            return errors.WorkerCrashedError("the answer was stopped before it finished (the model was unloaded)",
                                             hint="send the request again")
        text = (done.error if done else None) or "the model failed while answering"
        if self.generation.remote:
            return errors.RemoteError(text, hint="the remote engine failed; send the request again")
        if not self.generation.worker_alive:
            return errors.WorkerCrashedError(text, hint="send the request again: a fresh worker will start")
        return errors.EngineError(text)


async def _until_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


@contextlib.asynccontextmanager
async def watching(feed: Feed, receive: Receive) -> AsyncIterator[None]:
    """Cancel `feed` if the client disconnects while the block runs (or if the block fails)."""

    async def watch() -> None:
        await _until_disconnect(receive)
        feed.abandoned = True
        feed.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        yield
    finally:
        watcher.cancel()
        feed.cancel()


async def collect(feed: Feed, receive: Receive) -> Answer:
    """Wait for the whole answer; raises the generation's error if it failed (`feed.abandoned` tells
    whether that was because the client went away)."""
    async with watching(feed, receive):
        async for _ in feed.events():
            pass
    done = feed.done
    assert done is not None
    if done.reason not in ("stop", "length"):
        raise feed.failure()
    return feed.answer


def _encode(encoder: Encoder, event: Event) -> bytes:
    """The bytes for one event."""
    if isinstance(event, TextChunk):
        return encoder.text(event.text)
    if isinstance(event, ThinkingChunk):
        return encoder.thinking(event.text)
    if isinstance(event, ToolCallEvent):
        return encoder.tool_call(event.call)
    return b""


class EventStream(Response):
    """A streaming response that relays a `Feed` through an `Encoder` and watches for disconnects."""

    def __init__(self, feed: Feed, encoder: Encoder, headers: dict[str, str] | None = None) -> None:
        self.feed = feed
        self.encoder = encoder
        self.status_code = 200
        self.media_type = encoder.media_type
        self.background = None
        self.init_headers({"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})})

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        feed, encoder = self.feed, self.encoder
        async with watching(feed, receive):
            async for event in feed.events():
                body = _encode(encoder, event)
                if body:
                    await send({"type": "http.response.body", "body": body, "more_body": True})
        done = feed.done
        assert done is not None
        if done.reason in ("stop", "length"):
            tail = encoder.end(done)
            if feed.after is not None:
                with contextlib.suppress(errors.HearthError):  # the answer was sent; the log says why not
                    await run_blocking(feed.after, feed.answer)
        else:
            err = feed.failure()
            tail = encoder.error(err.message, "worker_crashed" if isinstance(err, errors.WorkerCrashedError)
                                 else "engine_error")
        await send({"type": "http.response.body", "body": tail, "more_body": False})
