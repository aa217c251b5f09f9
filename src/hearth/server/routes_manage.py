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
from collections.abc import AsyncIterator
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from hearth.errors import HearthError, InvalidRequestError
from hearth.server.native import ndjson
from hearth.server.runtime import Runtime
from hearth.server.schemas import _Body
from hearth.server.streaming import Bridge, run_blocking
from hearth.service import Modelfile, modelfile_from_fields


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


def _modelfile(body: CreateRequest, raw: dict[str, Any]) -> str | Modelfile:
    """The Modelfile text a client sent, or one built from Ollama's structured fields (never pasted as text)."""
    if body.modelfile:
        return body.modelfile
    if raw.get("files") or raw.get("adapters"):
        raise InvalidRequestError("uploading files is not supported; create from a local model", field="files")
    licenses = [body.license] if isinstance(body.license, str) else list(body.license or [])
    return modelfile_from_fields(raw.get("from"), system=body.system, template=body.template,
                                 parameters=body.parameters, messages=body.messages, licenses=licenses)


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
        modelfile = _modelfile(body, await request.json())
        created = await run_blocking(rt.service.create, name, modelfile)
        statuses = [*({"status": w} for w in created.warnings), {"status": "writing manifest"},
                    {"status": "success"}]
        if body.stream is False:
            return JSONResponse(statuses[-1])
        return Response(b"".join(ndjson(s) for s in statuses), media_type="application/x-ndjson")

    return api


async def _pull_stream(rt: Runtime, name: str, request: Request) -> AsyncIterator[bytes]:
    bridge: Bridge[dict[str, Any] | None] = Bridge()
    stop = False

    def progress(obj: dict[str, Any]) -> None:  # on the download thread
        if stop:
            raise _Stopped()
        bridge.put(dict(obj))

    def work() -> None:
        try:
            rt.service.pull(name, progress)
        except _Stopped:
            pass
        except HearthError as err:
            bridge.put({"error": err.message})
        except Exception:  # pragma: no cover - logged by the server; the client gets a sentence
            bridge.put({"error": "the download failed unexpectedly"})
        finally:
            bridge.put(None)

    task = asyncio.ensure_future(anyio.to_thread.run_sync(work))
    try:
        while True:
            item = await bridge.get()
            if item is None:
                break
            yield ndjson(item)
            if await request.is_disconnected():
                break
    finally:
        stop = True
        with contextlib.suppress(Exception):
            await asyncio.shield(task)
