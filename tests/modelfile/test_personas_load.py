"""The scheduler loads a persona's adapters, and reloads a persona that `hearth create` replaced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hearth.config import Settings
from hearth.engine import WorkerConfig
from hearth.modelfile import create_model
from hearth.service.scheduler import Scheduler
from hearth.store import ModelStore


class FakeClient:
    """Stands in for a model worker (the scheduler's injected constructor)."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.info: dict[str, Any] = {"n_ctx": 256, "n_seq": 1, "bos_text": "", "eos_text": ""}
        self.alive = True
        self.pid = None
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_adapters_reach_the_worker_and_a_replaced_persona_reloads(tiny_store: ModelStore, tiny_lora: Path,
                                                                   tmp_path: Path) -> None:
    scheduler = Scheduler(tiny_store, Settings(memory_budget=1 << 40), client_factory=FakeClient)  # type: ignore[arg-type]
    try:
        create_model(tiny_store, "p", f"FROM tiny\nSYSTEM one\nADAPTER {tiny_lora}\n", base_dir=tmp_path)
        first = scheduler.acquire("p")
        scheduler.release(first)
        assert first.client.config.lora_paths == tuple(str(p) for p in tiny_store.adapter_paths(first.manifest))
        assert scheduler.acquire("p") is first  # unchanged: the loaded model is reused
        scheduler.release(first)
        create_model(tiny_store, "p", "FROM tiny\nSYSTEM two\n", base_dir=tmp_path)
        second = scheduler.acquire("p")
        assert second is not first and first.client.closed
        assert second.manifest.system == "two" and second.client.config.lora_paths == ()
        scheduler.release(second)
    finally:
        scheduler.close()


def test_the_flash_attention_setting_reaches_the_worker(tiny_store: ModelStore) -> None:
    for setting, expected in (("off", 0), ("on", 1), ("auto", -1)):  # llama_flash_attn_type
        scheduler = Scheduler(tiny_store, Settings(memory_budget=1 << 40, flash_attention=setting),
                              client_factory=FakeClient)  # type: ignore[arg-type]
        try:
            loaded = scheduler.acquire("tiny")
            assert loaded.client.config.flash_attn == expected
            scheduler.release(loaded)
        finally:
            scheduler.close()
