"""Hearth's document routes: the collections (`GET /api/documents`), one collection's files, and a search.

They read only: collections are made on the computer itself (`hearth docs add`), since the server never reads
the disk for a client. To answer from a collection, a chat request names it (`"documents": "NAME"` on
`/v1/chat/completions` and `/api/chat`, see docs/api.md).
"""

from __future__ import annotations

from dataclasses import asdict
from functools import partial
from typing import Any

from fastapi import APIRouter

from hearth.server.runtime import Runtime
from hearth.server.schemas import _Body
from hearth.server.streaming import run_blocking


class SearchRequest(_Body):
    """`POST /api/documents/{collection}/search`."""

    query: str
    limit: int = 5
    mode: str = "hybrid"


def router(rt: Runtime) -> APIRouter:
    """The `/api/documents` routes bound to `rt`."""
    api = APIRouter(prefix="/api/documents", tags=["Documents"])

    @api.get("", summary="Document collections")
    async def collections() -> dict[str, Any]:
        rows = await run_blocking(rt.service.documents.list)
        return {"collections": [asdict(row) for row in rows]}

    @api.get("/{collection}", summary="One collection and its files")
    async def collection(collection: str) -> dict[str, Any]:
        found = await run_blocking(rt.service.documents.show, collection)
        files = [{"path": f.path, "kind": f.kind, "pages": f.pages, "passages": f.chunks, "indexed_at": f.indexed_at}
                 for f in found.files]
        return {**asdict(found.info), "file_list": files}

    @api.post("/{collection}/search", summary="The passages that best match a query")
    async def search(collection: str, body: SearchRequest) -> dict[str, Any]:
        found = await run_blocking(partial(rt.service.documents.search, collection, body.query, limit=body.limit,
                                           mode=body.mode))
        return {"mode": found.mode, "note": found.note, "passages": [
            {"path": p.path, "page": p.page, "score": round(p.score, 6), "text": p.text} for p in found.passages]}

    return api
