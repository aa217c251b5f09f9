"""What the history records about an answer, taken from the generation that produced it."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from hearth.history import ModelUsed
from hearth.options import Options
from hearth.service.generation import Generation


def model_used(generation: Generation, options: dict[str, Any] | Options | None, *, raw: bool = False) -> ModelUsed:
    """The model name, weights digest, chat template and every option in effect for `generation`.

    The options are the model's defaults with the request's `options` applied, plus the context size the
    model was loaded with; a persona's LoRA adapters and system prompt are part of them too.
    """
    loaded = generation.loaded
    manifest = loaded.manifest
    parameters: dict[str, Any] = {k: list(v) if isinstance(v, tuple) else v
                                  for k, v in asdict(loaded.options(options)).items()}
    parameters["num_ctx"] = loaded.n_ctx
    if manifest.adapters:
        parameters["adapters"] = list(manifest.adapters)
    if manifest.system:
        parameters["model_system"] = manifest.system
    return ModelUsed(manifest.name, manifest.digest, None if raw else loaded.template.source, parameters)
