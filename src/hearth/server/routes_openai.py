"""OpenAI-compatible routes under `/v1`: models, chat completions, completions, embeddings."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hearth.server import openai
from hearth.server.runtime import Runtime
from hearth.server.schemas import ChatCompletionRequest, CompletionRequest, EmbeddingRequest
from hearth.server.streaming import run_blocking


def router(rt: Runtime) -> APIRouter:
    """The `/v1` routes bound to `rt`."""
    api = APIRouter(prefix="/v1", tags=["OpenAI"])

    @api.get("/models", summary="List models")
    async def list_models() -> dict[str, Any]:
        return openai.model_list(await run_blocking(rt.service.list_models))

    @api.get("/models/{model:path}", summary="Describe a model")
    async def get_model(model: str) -> dict[str, Any]:
        return openai.model_object(await run_blocking(rt.service.show, model))

    @api.post("/chat/completions", summary="Chat (streamed as server-sent events when stream is true)")
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
        native = openai.chat_request(body)
        rid, created = openai.new_id("chatcmpl"), int(time.time())
        return await rt.answer(
            native, request,
            lambda model: openai.ChatStream(model, native.include_usage, rid=rid),
            lambda model, answer: openai.chat_response(model, answer, rid, created),
        )

    @api.post("/completions", summary="Complete a prompt as-is (no chat template)")
    async def completions(body: CompletionRequest, request: Request) -> Response:
        native = openai.completion_request(body)
        rid, created = openai.new_id("cmpl"), int(time.time())
        return await rt.answer(
            native, request,
            lambda model: openai.CompletionStream(model, native.include_usage),
            lambda model, answer: openai.completion_response(model, answer, rid, created),
        )

    @api.post("/embeddings", summary="Embedding vectors (unit length)")
    async def embeddings(body: EmbeddingRequest) -> dict[str, Any]:
        inputs = openai.embedding_inputs(body)
        result = await run_blocking(partial(rt.service.embed, body.model, inputs))
        return openai.embedding_response(result.model, result.vectors, result.prompt_tokens, body.encoding_format)

    return api
