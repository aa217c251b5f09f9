"""Fixtures for the Modelfile tests: a store without the built-in model, tiny models and adapters."""

from __future__ import annotations

from pathlib import Path

import pytest

from hearth.store import ModelStore, bundled
from tests.modelfile.lora import write_lora
from tests.store.store_samples import write_tiny_model


@pytest.fixture
def tiny_store(home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> ModelStore:
    """A store on the test's HEARTH_HOME holding one tiny llama model, `tiny` (no built-in model)."""
    monkeypatch.setattr(bundled, "locate", lambda: None)
    store = ModelStore()
    store.import_file(write_tiny_model(tmp_path / "tiny.gguf"), "tiny")
    return store


@pytest.fixture
def tiny_lora(tmp_path: Path) -> Path:
    """A small, structurally valid LoRA adapter for the llama architecture."""
    return write_lora(tmp_path / "adapter.gguf", strength=0.0, rank=2, layers=1)
