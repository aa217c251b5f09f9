"""The memory estimate against reality: the bundled model's worker, measured, at three context sizes."""

from __future__ import annotations

import psutil
import pytest

from hearth.config import Settings
from hearth.fit import estimate, read_shape
from hearth.options import parse_options
from hearth.service import Hearth

TOLERANCE = 0.15
STORY = "Here is a short story about the sea. "  # 9 tokens


# Without flash attention (the default) the estimate includes the attention scores of a batch against a
# full context, which only a prompt that nearly fills the context touches: those cases use one.
@pytest.mark.parametrize(("n_ctx", "n_seq", "flash_attention", "fill"),
                         [(512, 1, "off", 0.85), (2048, 1, "off", 0.9), (2048, 4, "off", 0.9), (8192, 1, "on", 0.05)])
def test_predicted_memory_matches_the_measured_resident_memory(
        session_home: object, n_ctx: int, n_seq: int, flash_attention: str, fill: float) -> None:
    hearth = Hearth(Settings().merged({"num_parallel": n_seq, "num_threads": 1, "flash_attention": flash_attention}))
    try:
        manifest = hearth.store.get("smollm2:135m")
        predicted = estimate(read_shape(hearth.store.model_path(manifest)), n_ctx, n_seq,
                             flash_attention=flash_attention == "on").total
        prompt = STORY * int(n_ctx * fill / 9) + "Summarise it in one sentence."
        options = parse_options({"num_ctx": n_ctx, "num_predict": 4, "temperature": 0})
        generation = hearth.generate("smollm2:135m", prompt, options)
        generation.text()
        assert generation.done is not None and generation.done.stats.prompt_tokens > n_ctx * fill * 0.9
        loaded = next(m for m in hearth.scheduler.loaded() if m.name == "smollm2:135m")
        assert loaded.n_ctx == n_ctx
        measured = psutil.Process(loaded.client.pid).memory_info().rss
        error = (predicted - measured) / measured
        print(f"n_ctx={n_ctx} n_seq={n_seq} flash_attention={flash_attention}: predicted {predicted / 1e6:.1f} MB,"
              f" measured RSS {measured / 1e6:.1f} MB, error {error:+.1%}")
        assert abs(error) <= TOLERANCE
    finally:
        hearth.close()


def test_flash_attention_off_costs_the_attention_scores_of_a_full_context(bundled_model: object) -> None:
    shape = read_shape(bundled_model)  # type: ignore[arg-type]
    scores = shape.n_head * 2048 * 512 * 4
    on, off = (estimate(shape, 2048, 1, flash_attention=fa).compute for fa in (True, False))
    assert on < scores < off


def test_the_scheduler_refuses_with_the_estimate_and_what_would_fit(session_home: object) -> None:
    from hearth.errors import InsufficientMemoryError

    hearth = Hearth(Settings().merged({"num_parallel": 1, "memory_budget": 300 << 20, "prompt_cache_bytes": 0}))
    try:
        with pytest.raises(InsufficientMemoryError) as caught:
            hearth.load("smollm2:135m", num_ctx=8192)
        message, hint = caught.value.message, caught.value.hint or ""
        assert "needs about 509 MB" in message and "of weights" in message and "8192 tokens" in message
        assert "num_ctx=" in hint and "hearth fit smollm2:135m" in hint
        assert hearth.scheduler.loaded() == []  # refused before a worker was started
    finally:
        hearth.close()
