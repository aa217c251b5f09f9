"""The scheduler through `Hearth`'s door: sharing, keep-alive, eviction, busy limits, dead workers, ps and stop.

Workers are fakes made by the scheduler's client factory (the layer above the engine); the store and the
model files are real. The real engine's part is covered in tests/engine.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hearth.config import Settings
from hearth.engine import WorkerConfig
from hearth.errors import BusyError, InsufficientMemoryError, NotFoundError
from hearth.service import Hearth
from hearth.store import ModelStore

MODEL = "smollm2:135m"
_pids = itertools.count(50_000)


class FakeWorker:
    """What the scheduler needs of a worker client: info, liveness, a pid, stats and close."""

    made: list[FakeWorker] = []

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.info: dict[str, Any] = {"n_seq": config.n_seq, "n_ctx": config.n_ctx, "bos_text": "", "eos_text": ""}
        self.alive = True
        self.closed = False
        self.pid = next(_pids)
        FakeWorker.made.append(self)

    def call(self, method: str, *args: Any, timeout: float = 600.0) -> Any:
        assert method == "stats"
        return {"slots": self.info["n_seq"], "slots_busy": 0, "cache_hits": 3}

    def tokenize(self, text: str, *, add_special: bool = False) -> list[int]:
        return [ord(c) for c in text]

    def tokenize_prompt(self, text: str, spans: list[tuple[int, int]], *, add_special: bool = False) -> list[int]:
        return self.tokenize(text)

    def new_job_id(self) -> int:
        return 1

    def close(self) -> None:
        self.closed = True
        self.alive = False


def service(home: Path, **settings: Any) -> Hearth:
    FakeWorker.made = []
    store = ModelStore(home)
    store.copy(MODEL, "other:1")
    defaults: dict[str, Any] = {"num_parallel": 1, "num_ctx": 512, "max_queue": 0, "history": False}
    return Hearth(Settings(**{**defaults, **settings}), store=store, client_factory=FakeWorker)


@pytest.fixture
def hearth(home: Path) -> Iterator[Hearth]:
    svc = service(home)
    yield svc
    svc.close()


def test_one_worker_per_model_shared_by_requests(hearth: Hearth) -> None:
    assert hearth.load(MODEL) == MODEL
    assert hearth.load("smollm2:135m") == MODEL
    assert len(FakeWorker.made) == 1
    [running] = hearth.ps()
    assert running.name == MODEL and running.pid == FakeWorker.made[0].pid and running.n_ctx == 512
    assert running.slots == 1 and running.in_flight == 0 and running.worker["cache_hits"] == 3
    assert running.expires_in is not None and 0 < running.expires_in <= 300


def test_keep_alive_zero_unloads_when_the_request_ends_and_negative_never_expires(hearth: Hearth) -> None:
    hearth.load(MODEL, keep_alive=0)
    assert hearth.ps() == [] and FakeWorker.made[0].closed
    hearth.load(MODEL, keep_alive=-1)
    assert hearth.ps()[0].expires_in is None


def test_the_least_recently_used_idle_model_makes_room(home: Path) -> None:
    svc = service(home, max_loaded_models=1)
    try:
        svc.load(MODEL)
        svc.load("other:1")
        assert [r.name for r in svc.ps()] == [svc.show("other:1").name]
        assert FakeWorker.made[0].closed and not FakeWorker.made[1].closed
    finally:
        svc.close()


def test_requests_beyond_slots_and_queue_are_refused_busy(hearth: Hearth) -> None:
    generation = hearth.generate(MODEL, "hi", raw=True)  # holds the only slot (never started)
    try:
        with pytest.raises(BusyError) as err:
            hearth.generate(MODEL, "again", raw=True)
        assert err.value.retry_after
    finally:
        generation.close()
    hearth.generate(MODEL, "now there is room", raw=True).close()


def test_a_dead_worker_is_replaced_at_the_next_request(hearth: Hearth) -> None:
    hearth.load(MODEL)
    FakeWorker.made[0].alive = False
    hearth.load(MODEL)
    assert len(FakeWorker.made) == 2 and FakeWorker.made[0].closed
    assert hearth.ps()[0].pid == FakeWorker.made[1].pid


def test_a_new_context_size_reloads_an_idle_model(hearth: Hearth) -> None:
    hearth.load(MODEL)
    hearth.load(MODEL, num_ctx=1024)
    assert [w.config.n_ctx for w in FakeWorker.made] == [512, 1024]
    assert hearth.ps()[0].n_ctx == 1024


def test_stop_and_remove_unload_first(hearth: Hearth) -> None:
    assert hearth.stop(MODEL) is False
    hearth.load("other:1")
    assert hearth.stop("other:1") is True and hearth.ps() == []
    hearth.load("other:1")
    hearth.remove("other:1")
    assert hearth.ps() == [] and all(w.closed for w in FakeWorker.made)
    with pytest.raises(NotFoundError):
        hearth.show("other:1")
    with pytest.raises(NotFoundError):
        hearth.remove("other:1")
    assert hearth.show(MODEL).name == MODEL  # the shared weights are still there


def test_a_model_larger_than_the_budget_is_refused_before_any_worker_starts(home: Path) -> None:
    svc = service(home, memory_budget=10_000_000)
    try:
        with pytest.raises(InsufficientMemoryError) as err:
            svc.load(MODEL)
        assert "memory budget" in err.value.message
        assert FakeWorker.made == []
    finally:
        svc.close()


def test_a_draft_models_memory_is_counted_before_any_worker_starts(tmp_path: Path) -> None:
    alone = service(tmp_path / "alone", speculative="off", prompt_cache_bytes=0)
    try:
        alone.load(MODEL)
        [running] = alone.scheduler.loaded()
        one = running.estimate_bytes
    finally:
        alone.close()
    svc = service(tmp_path / "small", speculative="draft", draft_model="other:1", memory_budget=int(one * 1.5),
                  prompt_cache_bytes=0)
    try:
        with pytest.raises(InsufficientMemoryError) as err:
            svc.load(MODEL)
        assert "draft model" in err.value.message and "speculative = ngram" in (err.value.hint or "")
        assert FakeWorker.made == []
    finally:
        svc.close()
    svc = service(tmp_path / "large", speculative="draft", draft_model="other:1", memory_budget=int(one * 2.5),
                  prompt_cache_bytes=0)
    try:
        svc.load(MODEL)
        [running] = svc.scheduler.loaded()
        assert running.estimate_bytes > 1.9 * one  # the same file as its own draft: twice the memory
        assert FakeWorker.made[0].config.draft_model_path
    finally:
        svc.close()
