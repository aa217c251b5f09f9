"""The memory estimate against reality: the bundled model's worker, measured, at three context sizes."""

from __future__ import annotations

import psutil
import pytest

from hearth.config import Settings
from hearth.fit import estimate, read_shape
from hearth.service import Hearth

TOLERANCE = 0.15
PROMPT = "Here is a short story about the sea. " * 40 + "Summarise it in one sentence."


@pytest.mark.parametrize(("n_ctx", "n_seq"), [(512, 1), (2048, 1), (8192, 1), (2048, 4)])
def test_predicted_memory_matches_the_measured_resident_memory(session_home: object, n_ctx: int, n_seq: int) -> None:
    hearth = Hearth(Settings().merged({"num_parallel": n_seq, "num_threads": 1}))
    try:
        manifest = hearth.store.get("smollm2:135m")
        predicted = estimate(read_shape(hearth.store.model_path(manifest)), n_ctx, n_seq).total
        generation = hearth.generate("smollm2:135m", PROMPT, {"num_ctx": n_ctx, "num_predict": 4, "temperature": 0})
        generation.text()
        loaded = next(m for m in hearth.scheduler.loaded() if m.name == "smollm2:135m")
        assert loaded.n_ctx == n_ctx
        measured = psutil.Process(loaded.client.pid).memory_info().rss
        error = (predicted - measured) / measured
        print(f"n_ctx={n_ctx} n_seq={n_seq}: predicted {predicted / 1e6:.1f} MB, measured RSS {measured / 1e6:.1f} MB,"
              f" error {error:+.1%}")
        assert abs(error) <= TOLERANCE
    finally:
        hearth.close()


def test_the_scheduler_refuses_with_the_estimate_and_what_would_fit(session_home: object) -> None:
    from hearth.errors import InsufficientMemoryError

    hearth = Hearth(Settings().merged({"num_parallel": 1, "memory_budget": 300 << 20, "prompt_cache_bytes": 0}))
    try:
        with pytest.raises(InsufficientMemoryError) as caught:
            hearth.load("smollm2:135m", num_ctx=8192)
        message, hint = caught.value.message, caught.value.hint or ""
        assert "needs about 376 MB" in message and "of weights" in message and "8192 tokens" in message
        assert "num_ctx=" in hint and "hearth fit smollm2:135m" in hint
        assert hearth.scheduler.loaded() == []  # refused before a worker was started
    finally:
        hearth.close()
