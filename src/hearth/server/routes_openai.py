"""OpenAI-compatible routes under `/v1`: models, chat completions, completions, embeddings."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hearth.server import openai, responses
from hearth.server.runtime import Runtime
from hearth.server.schemas import ChatCompletionRequest, CompletionRequest, EmbeddingRequest, ResponsesRequest
from hearth.server.streaming import run_blocking
from hearth.service import Generation
from hearth.types import Answer


def router(rt: Runtime) -> APIRouter:
    """The `/v1` routes bound to `rt`."""
    api = APIRouter(prefix="/v1", tags=["OpenAI"])

    @api.get("/models", summary="List models")
    async def list_models() -> dict[str, Any]:
        return openai.model_list(*(await run_blocking(lambda: (rt.service.list_models(),
                                                               rt.service.remote_list()))))

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

    _responses_routes(api, rt)
    return api


def _responses_routes(api: APIRouter, rt: Runtime) -> None:
    """`/v1/responses`: answers over the same pipeline, stored in the history to be continued by id."""

    @api.post("/responses", summary="OpenAI Responses (server-sent events when stream is true)")
    async def create_response(body: ResponsesRequest, request: Request) -> Response:
        return await _respond(rt, body, request)

    @api.get("/responses/{response_id}", summary="A stored response")
    async def get_response(response_id: str) -> dict[str, Any]:
        return (await run_blocking(rt.service.conversations.response, response_id)).body

    @api.delete("/responses/{response_id}", summary="Forget a stored response")
    async def delete_response(response_id: str) -> dict[str, Any]:
        await run_blocking(rt.service.conversations.delete_response, response_id)
        return {"id": response_id, "object": "response.deleted", "deleted": True}

    @api.get("/responses/{response_id}/input_items", summary="The input items of a stored response")
    async def input_items(response_id: str) -> dict[str, Any]:
        stored = await run_blocking(rt.service.conversations.response, response_id)
        outputs = {item["id"] for item in stored.body.get("output", [])}
        data = [item for item in reversed(stored.items) if item["id"] not in outputs]  # newest first, as OpenAI
        return {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None, "has_more": False}


async def _respond(rt: Runtime, body: ResponsesRequest, request: Request) -> Response:
    """Answer a Responses request, continuing `previous_response_id`, and store the answer unless told not to."""
    parent = None
    if body.previous_response_id:
        parent = await run_blocking(rt.service.conversations.response, body.previous_response_id)
    new = responses.input_items(body.input)
    items = [*(parent.items if parent else []), *new]
    native = responses.request(body, items)
    rid, created = responses.new_id(), int(time.time())
    fresh = responses.messages(new)  # what this request adds to the recorded conversation

    def store(generation: Generation, answer: Answer) -> None:
        if body.store is False:
            return
        stored = responses.response_object(rid, body, generation.model, created, answer)
        rt.service.conversations.record_response(rid, stored, [*items, *responses.output_items(rid, answer)],
                                                 fresh, generation, answer, parent=parent)

    return await rt.answer(
        native, request, lambda model: responses.ResponseStream(rid, body, model, created),
        lambda model, answer: responses.response_object(rid, body, model, created, answer), after=store)
