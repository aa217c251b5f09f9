"""Ollama-compatible routes under `/api`."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from hearth import __version__
from hearth.errors import InvalidRequestError
from hearth.server import ollama
from hearth.server.native import NativeRequest, embed_inputs, request_options, require_text
from hearth.server.runtime import Runtime
from hearth.server.schemas import (
    OllamaChatRequest,
    OllamaCopyRequest,
    OllamaEmbeddingsRequest,
    OllamaEmbedRequest,
    OllamaGenerateRequest,
    OllamaModelRequest,
)
from hearth.server.streaming import run_blocking


def _lifecycle(rt: Runtime, native: NativeRequest, *, chat: bool) -> dict[str, Any]:
    """A request without a prompt: keep_alive 0 unloads the model, anything else loads it."""
    if native.keep_alive == 0:
        rt.service.stop(native.model)
        return ollama.lifecycle_response(native.model, "unload", chat=chat)
    num_ctx = native.options.num_ctx if "num_ctx" in native.options.given else None
    name = rt.service.load(native.model, keep_alive=native.keep_alive, num_ctx=num_ctx)
    return ollama.lifecycle_response(name, "load", chat=chat)


def router(rt: Runtime) -> APIRouter:
    """The `/api` routes bound to `rt`."""
    api = APIRouter(prefix="/api", tags=["Ollama"])

    @api.get("/version", summary="Ollama API version implemented")
    async def version() -> dict[str, Any]:
        return {"version": ollama.COMPATIBLE_VERSION, "hearth_version": __version__,
                "hearth_offline": rt.service.settings.offline}

    @api.get("/tags", summary="List models")
    async def tags() -> dict[str, Any]:
        def listing() -> dict[str, Any]:
            manifests = rt.service.list_models()
            try:
                labels = rt.service.fit_labels(manifests)
            except Exception:  # a label is a nicety: never fail the listing for it
                labels = {}
            return ollama.tags(manifests, labels, rt.service.remote_list())

        return await run_blocking(listing)

    @api.post("/show", summary="Describe a model")
    async def show(body: OllamaModelRequest) -> dict[str, Any]:
        name = _name(body)
        manifest = await run_blocking(rt.service.show, name)
        return ollama.show(manifest, await run_blocking(partial(rt.service.modelfile, name, paths=False)))

    @api.get("/ps", summary="List loaded models")
    async def ps() -> dict[str, Any]:
        local = [ollama.ps_entry(m) for m in await run_blocking(rt.service.ps)]
        return {"models": local + [ollama.ps_remote_entry(u) for u in rt.service.remotes_in_use()]}

    @api.post("/chat", summary="Chat (NDJSON stream unless stream is false)")
    async def chat(body: OllamaChatRequest, request: Request) -> Response:
        native = ollama.chat_request(body)
        if native.messages is None:
            return JSONResponse(await run_blocking(partial(_lifecycle, rt, native, chat=True)))
        return await rt.answer(native, request, ollama.ChatStream, ollama.chat_response)

    @api.post("/generate", summary="Complete a prompt (NDJSON stream unless stream is false)")
    async def generate(body: OllamaGenerateRequest, request: Request) -> Response:
        native = ollama.generate_request(body)
        if native.prompt is None:
            return JSONResponse(await run_blocking(partial(_lifecycle, rt, native, chat=False)))
        return await rt.answer(native, request, ollama.GenerateStream, ollama.generate_response)

    _model_routes(api, rt)
    return api


def _model_routes(api: APIRouter, rt: Runtime) -> None:
    """Embeddings and model management."""

    @api.post("/embed", summary="Embedding vectors (unit length)")
    async def embed(body: OllamaEmbedRequest) -> dict[str, Any]:
        if body.dimensions is not None:
            raise InvalidRequestError("dimensions is not supported", field="dimensions")
        request_options(dict(body.options or {}))  # checked (400), though embeddings use none of them
        inputs = embed_inputs(body.input, "input")
        started = time.perf_counter_ns()
        result = await run_blocking(partial(rt.service.embed, body.model, inputs,
                                            keep_alive=ollama.keep_alive(body.keep_alive)))
        return ollama.embed_response(result.model, result.vectors, result.prompt_tokens,
                                     time.perf_counter_ns() - started)

    @api.post("/embeddings", summary="One embedding vector (the older form of /api/embed)")
    async def embeddings(body: OllamaEmbeddingsRequest) -> dict[str, Any]:
        request_options(dict(body.options or {}))
        text = require_text(body.prompt, "prompt")
        result = await run_blocking(partial(rt.service.embed, body.model, [text],
                                            keep_alive=ollama.keep_alive(body.keep_alive)))
        return {"embedding": result.vectors[0]}

    @api.delete("/delete", summary="Delete a model (unloading it first)")
    async def delete(body: OllamaModelRequest) -> Response:
        await run_blocking(rt.service.remove, _name(body))
        return Response(status_code=200)

    @api.post("/copy", summary="Copy a model under a new name (409 if the name is taken)")
    async def copy(body: OllamaCopyRequest) -> Response:
        await run_blocking(rt.service.copy, body.source, body.destination)
        return Response(status_code=200)


def _name(body: OllamaModelRequest) -> str:
    name = body.target()
    if not name:
        raise InvalidRequestError("model is required", field="model")
    return name
