"""Which speculative decoding a model loads with (`speculative`, `draft_max`, `draft_model`): docs/speculative.md."""

from __future__ import annotations

from typing import Any

from hearth.config import Settings
from hearth.errors import InvalidOptionError
from hearth.service.tuning import EngineSettings
from hearth.store import Manifest, ModelStore


def speculation_fields(settings: Settings, manifest: Manifest, engine: EngineSettings | None,
                       store: ModelStore) -> dict[str, Any]:
    """The `WorkerConfig` fields for speculative decoding: mode, draft length and the draft model's file.

    `auto` drafts from the context (ngram), or with the model's draft model if it names one, when flash
    attention is on: there a verified draft gets the logits a one-token step would (docs/speculative.md).
    """
    name = manifest.parameters.get("draft_model") or settings.draft_model
    mode = settings.speculative
    if mode == "auto":
        flash = engine is not None and engine.flash_attention != "off"
        mode = ("draft" if name else "ngram") if flash else "off"
    path = ""
    if mode == "draft":
        if not name:
            raise InvalidOptionError("speculative = draft needs a draft model", field="draft_model",
                                     hint="set draft_model, or PARAMETER draft_model NAME in the Modelfile")
        path = str(store.model_path(store.get(str(name))))
    return {"speculative": mode, "draft_max": settings.draft_max, "draft_model_path": path}
