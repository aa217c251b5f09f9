"""The app factory: routes of both protocols, the guard in front, and errors mapped by class.

`create_app(service)` builds an ASGI app around one `Hearth` service; `hearth serve` runs it with uvicorn,
and tests drive it in-process with a fake service or over HTTP with the real one.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from hearth import __version__
from hearth.config import Settings
from hearth.errors import HearthError
from hearth.server import errors as wire
from hearth.server import routes_anthropic, routes_documents, routes_manage, routes_ollama, routes_openai, routes_web
from hearth.server.runtime import Runtime
from hearth.server.security import Guard, Policy
from hearth.server.streaming import run_blocking
from hearth.service import Hearth

log = logging.getLogger("hearth.server")

DESCRIPTION = """Hearth runs local GGUF models. It speaks OpenAI's and Anthropic's APIs under `/v1` and Ollama's
under `/api`. Errors use each protocol's own shape. See docs/api.md for what is supported."""


def _respond(err: wire.WireError, request: Request) -> JSONResponse:
    return JSONResponse(wire.body(err, request.url.path), status_code=err.status, headers=err.headers())


def _field(loc: tuple[Any, ...]) -> str | None:
    out = ""
    for part in loc:
        if part == "body" and not out:
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and ("[" in part or part in {"str", "int", "float", "bool", "dict", "list"}):
            continue  # pydantic's name for a member of a union, not a field
        else:
            out += f".{part}" if out else str(part)
    return out or None


def _validation_error(exc: RequestValidationError) -> wire.WireError:
    problems = exc.errors()
    if not problems:
        return wire.WireError(400, "the request body is not valid")
    first = problems[0]
    kind = str(first.get("type", ""))
    field = _field(tuple(first.get("loc", ())))
    if kind == "json_invalid":
        return wire.WireError(400, "the request body is not valid JSON")
    if field is None and kind == "missing":
        return wire.WireError(400, "a JSON request body is required")
    if field is None:
        return wire.WireError(400, "the request body must be a JSON object")
    return wire.WireError(400, f"{field}: {first.get('msg', 'invalid value')}"[:300], field=field)


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(HearthError)
    async def hearth_error(request: Request, exc: HearthError) -> JSONResponse:
        return _respond(wire.from_exception(exc), request)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _respond(_validation_error(exc), request)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            err = wire.WireError(404, f"no such endpoint: {request.method} {request.url.path}"[:200])
        elif exc.status_code == 405:
            err = wire.WireError(405, f"{request.method} is not allowed on {request.url.path}"[:200])
        elif exc.status_code == 400:
            err = wire.WireError(400, "the request body could not be read as JSON")
        else:
            err = wire.WireError(exc.status_code, str(exc.detail))
        return _respond(err, request)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _respond(wire.from_exception(exc), request)


def _misc_routes(app: FastAPI, rt: Runtime) -> None:
    @app.get("/health", tags=["Server"], summary="Liveness (no API key needed)")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    @app.get("/metrics", tags=["Server"], summary="Prometheus metrics")
    async def metrics() -> Response:
        models = await run_blocking(rt.service.ps)
        return PlainTextResponse(rt.metrics.render(models), media_type="text/plain; version=0.0.4")


def _openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """FastAPI's description, with its automatic 422 answers relabelled as the 400s this server sends."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    responses = operation.get("responses", {})
                    if "422" in responses:
                        responses["400"] = {"description": "Invalid request: an error body in the protocol's shape "
                                                           "naming the field"}
                        del responses["422"]
            app.openapi_schema = schema
        return app.openapi_schema

    return build


def create_app(service: Hearth, settings: Settings | None = None, *, own_service: bool = False) -> FastAPI:
    """The ASGI app serving `service`; with `own_service` it closes the service (unloads models) at shutdown."""
    settings = settings or service.settings
    rt = Runtime(service, settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if own_service:
            await run_blocking(service.close)

    app = FastAPI(title="Hearth", version=__version__, description=DESCRIPTION, docs_url=None, redoc_url=None,
                  openapi_url="/openapi.json", lifespan=lifespan)
    app.state.runtime = rt
    _install_handlers(app)
    app.include_router(routes_openai.router(rt))
    app.include_router(routes_anthropic.router(rt))
    app.include_router(routes_ollama.router(rt))
    app.include_router(routes_manage.router(rt))
    app.include_router(routes_documents.router(rt))
    app.include_router(routes_web.router(rt))
    app.include_router(routes_web.page_router(rt))
    _misc_routes(app, rt)
    app.openapi = _openapi(app)  # type: ignore[method-assign]
    app.add_middleware(Guard, policy=Policy.from_settings(settings, service.devices.check), observe=rt.metrics.observe)
    return app
