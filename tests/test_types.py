"""Derived figures of the shared event types."""

from __future__ import annotations

from hearth.types import Stats


def test_eval_rate_counts_the_steps_the_duration_spans() -> None:
    # 11 tokens: the first came from the prompt's evaluation, the 10 others took 0.1 s → 100 tokens/s
    assert Stats(completion_tokens=11, eval_ns=100_000_000).eval_rate == 100.0
    assert Stats(completion_tokens=1, eval_ns=0).eval_rate == 0.0
    assert Stats(prompt_tokens=10, prompt_ns=50_000_000).prompt_rate == 200.0
