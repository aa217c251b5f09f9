"""Ollama's model-making routes: `POST /api/pull` (download with streamed progress) and `POST /api/create`.

Both run their blocking work on a thread. `/api/pull` streams Ollama's progress objects as NDJSON (unless
`stream` is false); if the client goes away the download stops at its next progress report and the bytes
already fetched are kept for the next attempt. An error after the stream started is one `{"error": …}`
line. `/api/create` takes Ollama's structured fields (`from`, `system`, `template`, `parameters`,
`messages`, `license`) or a whole `modelfile`; file paths are refused (the server never reads the disk for
a client).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from hearth.errors import HearthError, InvalidRequestError
from hearth.server.runtime import Runtime
from hearth.server.schemas import _Body
from hearth.server.streaming import run_blocking


class PullRequest(_Body):
    """`POST /api/pull`."""

    model: str | None = None
    name: str | None = None
    insecure: bool | None = None
    stream: bool | None = None


class CreateRequest(_Body):
    """`POST /api/create` (Ollama's structured form, or the older `modelfile` text)."""

    model: str | None = None
    name: str | None = None
    modelfile: str | None = None
    system: str | None = None
    template: str | None = None
    license: str | list[str] | None = None
    parameters: dict[str, Any] | None = None
    messages: list[dict[str, Any]] | None = None
    stream: bool | None = None


class _Stopped(Exception):
    """The client went away: stop downloading."""


def _line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode()


def _modelfile(body: CreateRequest, raw: dict[str, Any]) -> str:
    if body.modelfile:
        return body.modelfile
    base = raw.get("from")
    if not isinstance(base, str) or not base:
        raise InvalidRequestError("'from' (the base model) or 'modelfile' is required", field="from")
    if raw.get("files") or raw.get("adapters"):
        raise InvalidRequestError("uploading files is not supported; create from a local model", field="files")
    lines = [f"FROM {base}"]
    if body.system is not None:
        lines.append(f'SYSTEM """{body.system}"""')
    if body.template is not None:
        lines.append(f'TEMPLATE """{body.template}"""')
    for key, value in (body.parameters or {}).items():
        for item in value if isinstance(value, list) else [value]:
            lines.append(f"PARAMETER {key} {json.dumps(item) if isinstance(item, str) else item}")
    for i, message in enumerate(body.messages or []):
        role, content = message.get("role"), message.get("content")
        if not isinstance(role, str) or not isinstance(content, str):
            raise InvalidRequestError(f"messages[{i}] needs a role and a content", field="messages")
        lines.append(f'MESSAGE {role} """{content}"""')
    for text in [body.license] if isinstance(body.license, str) else (body.license or []):
        lines.append(f'LICENSE """{text}"""')
    return "\n".join(lines) + "\n"


def router(rt: Runtime) -> APIRouter:
    """The `/api/pull` and `/api/create` routes bound to `rt`."""
    api = APIRouter(prefix="/api", tags=["Ollama"])

    @api.post("/pull", summary="Download a model (catalog name or hf.co/OWNER/REPO[:QUANT])")
    async def pull(body: PullRequest, request: Request) -> Response:
        name = body.model or body.name
        if not name:
            raise InvalidRequestError("model is required", field="model")
        if body.stream is False:
            await run_blocking(rt.service.pull, name)
            return JSONResponse({"status": "success"})
        return StreamingResponse(_pull_stream(rt, name, request), media_type="application/x-ndjson")

    @api.post("/create", summary="Create a model from a base model, a system prompt, parameters…")
    async def create(body: CreateRequest, request: Request) -> Response:
        name = body.model or body.name
        if not name:
            raise InvalidRequestError("model is required", field="model")
        text = _modelfile(body, await request.json())
        created = await run_blocking(rt.service.create, name, text)
        statuses = [*({"status": w} for w in created.warnings), {"status": "writing manifest"},
                    {"status": "success"}]
        if body.stream is False:
            return JSONResponse(statuses[-1])
        return Response(b"".join(_line(s) for s in statuses), media_type="application/x-ndjson")

    return api


async def _pull_stream(rt: Runtime, name: str, request: Request) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
    stop = False

    def progress(obj: dict[str, Any]) -> None:  # on the download thread
        if stop:
            raise _Stopped()
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(queue.put_nowait, dict(obj))

    def work() -> None:
        try:
            rt.service.pull(name, progress)
        except _Stopped:
            pass
        except HearthError as err:
            loop.call_soon_threadsafe(queue.put_nowait, {"error": err.message})
        except Exception:  # pragma: no cover - logged by the server; the client gets a sentence
            loop.call_soon_threadsafe(queue.put_nowait, {"error": "the download failed unexpectedly"})
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, None)

    task = asyncio.ensure_future(anyio.to_thread.run_sync(work))
    try:
        while True:
            item = await queue.get()
            if item is None:
                break
            yield _line(item)
            if await request.is_disconnected():
                break
    finally:
        stop = True
        with contextlib.suppress(Exception):
            await asyncio.shield(task)
