"""The web page and the routes only it needs: conversations, pairing, and reading attached files.

The page (`/`, `/web/…`) is static and public, sent with a strict Content-Security-Policy: scripts, styles,
images and connections from this server only, no inline script or style, no framing. Everything it shows
comes from the API routes, which the guard protects like any other (API key, paired device, or loopback).
Conversations are the same history the terminal uses (`hearth history`), through `Hearth.conversations`.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from hearth import web
from hearth.errors import InvalidRequestError, NotFoundError
from hearth.server.runtime import Runtime
from hearth.server.security import DEVICE_COOKIE
from hearth.server.streaming import run_blocking

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-cache",
}
COOKIE_AGE = 400 * 24 * 3600  # the most browsers keep a cookie
MAX_NAME = 255


class TitleRequest(BaseModel):
    """A conversation's new title (empty: back to its first question)."""

    model_config = ConfigDict(extra="forbid")
    title: str = Field(max_length=2000)


class ForkRequest(BaseModel):
    """Where to fork: the new conversation keeps messages 1..`at`."""

    model_config = ConfigDict(extra="forbid")
    at: int = Field(ge=0)


class PairRequest(BaseModel):
    """A one-time pairing code from `hearth devices pair`."""

    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=64)


class FitRequest(BaseModel):
    """An attachment's text, to count (and cut) for `model`."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(min_length=1, max_length=300)
    text: str
    options: dict[str, Any] | None = None


def _page_response(name: str, request: Request) -> Response:
    found = web.asset(name)
    if found is None:
        raise NotFoundError(f"no such file: /web/{name[:100]}")
    if request.headers.get("if-none-match") == found.etag:
        return Response(status_code=304, headers={**PAGE_HEADERS, "ETag": found.etag})
    return Response(found.body, media_type=found.media_type, headers={**PAGE_HEADERS, "ETag": found.etag})


def _summary(summary: Any) -> dict[str, Any]:
    return dataclasses.asdict(summary)


def _conversation(conversation: Any, branches: list[Any]) -> dict[str, Any]:
    messages = []
    for m in conversation.messages:
        messages.append({"position": m.position, "role": m.role, "content": m.content, "created_at": m.created_at,
                         "model": m.model, "finish_reason": m.finish_reason,
                         "stats": dataclasses.asdict(m.stats) if m.stats else None})
    return {**_summary(conversation.summary), "messages": messages, "branches": [_summary(b) for b in branches]}


def page_router(rt: Runtime) -> APIRouter:
    """`/` (the page for browsers, a plain line for API clients probing the server) and `/web/…`."""
    page = APIRouter(include_in_schema=False)

    @page.get("/")
    async def root(request: Request) -> Response:
        if "text/html" in request.headers.get("accept", ""):
            return _page_response("index.html", request)
        return PlainTextResponse("Hearth is running")

    @page.head("/")
    async def root_head() -> Response:
        return PlainTextResponse("Hearth is running")

    @page.get("/web/{name:path}")
    async def asset(name: str, request: Request) -> Response:
        return _page_response(name, request)

    return page


def router(rt: Runtime) -> APIRouter:
    """The page's API: conversations, pairing, attachments."""
    api = APIRouter(prefix="/api", tags=["Hearth"])
    _conversation_routes(api, rt)
    _page_routes(api, rt)
    return api


def _conversation_routes(api: APIRouter, rt: Runtime) -> None:
    history = rt.service.conversations

    @api.get("/conversations", summary="List conversations (newest first), or search them with q")
    async def conversations(limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0),
                            q: str | None = Query(None, max_length=500)) -> dict[str, Any]:
        if q and q.strip():
            found = await run_blocking(history.search_conversations, q.strip(), limit)
            return {"conversations": [{**_summary(s), "snippet": snippet} for s, snippet in found]}
        return {"conversations": [_summary(s) for s in await run_blocking(history.list, limit, offset)]}

    @api.get("/conversations/{ref}", summary="A conversation with its messages and the branches forked from it")
    async def conversation(ref: str) -> dict[str, Any]:
        def read() -> dict[str, Any]:
            found = history.get(ref)
            return _conversation(found, history.branches(found.id))
        return await run_blocking(read)

    @api.patch("/conversations/{ref}", summary="Rename a conversation")
    async def rename(ref: str, body: TitleRequest) -> dict[str, Any]:
        return _summary(await run_blocking(history.rename, ref, body.title))

    @api.delete("/conversations/{ref}", summary="Delete a conversation for good")
    async def delete(ref: str) -> dict[str, Any]:
        deleted = await run_blocking(history.delete, [ref])
        return {"deleted": deleted.count, "erased": deleted.complete}

    @api.post("/conversations/{ref}/fork", summary="A new conversation holding messages 1..at of this one")
    async def fork(ref: str, body: ForkRequest) -> dict[str, Any]:
        new = await run_blocking(partial(history.fork, ref, body.at, source="web"))
        return _summary(await run_blocking(lambda: history.get(new).summary))


def _page_routes(api: APIRouter, rt: Runtime) -> None:
    @api.post("/pair", summary="Trade a one-time pairing code for a device cookie")
    async def pair(body: PairRequest, request: Request) -> Response:
        agent = request.headers.get("user-agent", "browser")
        device, token = await run_blocking(rt.service.devices.redeem, body.code, agent)
        response = JSONResponse({"device": device.id, "name": device.name})
        response.set_cookie(DEVICE_COOKIE, token, max_age=COOKIE_AGE, httponly=True, samesite="strict", path="/")
        return response

    @api.post("/extract", summary="The text of an attached file (PDF, DOCX, HTML or text), sent as the body")
    async def extract(request: Request, name: str = Query(..., min_length=1, max_length=MAX_NAME)) -> dict[str, Any]:
        data = await request.body()
        if not data:
            raise InvalidRequestError("the file is empty", field="file")
        text = await run_blocking(rt.service.extract_text, name, data)
        return {"name": name, "text": text, "chars": len(text)}

    @api.post("/extract/count", summary="Count an attachment's tokens for a model and cut it to fit its context")
    async def count(body: FitRequest) -> dict[str, Any]:
        num_ctx = (body.options or {}).get("num_ctx")
        if num_ctx is not None and (not isinstance(num_ctx, int) or isinstance(num_ctx, bool) or num_ctx < 256):
            raise InvalidRequestError("options.num_ctx must be a whole number of at least 256",
                                      field="options.num_ctx")
        fitted = await run_blocking(partial(rt.service.fit_text, body.model, body.text, num_ctx=num_ctx))
        return {"text": fitted.text, "tokens": fitted.tokens, "kept_tokens": fitted.kept_tokens,
                "context": fitted.context, "truncated": fitted.truncated}
