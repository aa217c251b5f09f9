"""Anthropic-compatible routes: `POST /v1/messages` and `POST /v1/messages/count_tokens`.

Claude Code and the `anthropic` SDKs work against them with `ANTHROPIC_BASE_URL=http://127.0.0.1:11435`;
the key, when one is set, may come as `x-api-key` (as Anthropic's SDKs send it) or as a Bearer token.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hearth.server import anthropic
from hearth.server.runtime import Runtime
from hearth.server.schemas import AnthropicCountTokensRequest, AnthropicMessagesRequest
from hearth.server.streaming import run_blocking


def router(rt: Runtime) -> APIRouter:
    """The Messages routes bound to `rt`."""
    api = APIRouter(prefix="/v1", tags=["Anthropic"])

    @api.post("/messages", summary="Anthropic Messages (server-sent events when stream is true)")
    async def messages(body: AnthropicMessagesRequest, request: Request) -> Response:
        native = anthropic.messages_request(body)
        mid = anthropic.new_id()
        return await rt.answer(native, request, lambda model: anthropic.MessageStream(model, mid),
                               lambda model, answer: anthropic.message_response(model, answer, mid))

    @api.post("/messages/count_tokens", summary="Prompt tokens a Messages request would take")
    async def count_tokens(body: AnthropicCountTokensRequest) -> dict[str, Any]:
        messages, turn = anthropic.count_request(body)
        return {"input_tokens": await run_blocking(partial(rt.service.count_tokens, body.model, messages,
                                                           turn=turn))}

    return api
