"""Quantized KV caches (q8_0, q4_0) on the bundled model: they load, answer, and the estimator counts them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hearth.config import Settings
from hearth.errors import InvalidOptionError
from hearth.fit import ModelShape, estimate
from hearth.options import parse_options
from hearth.service import Hearth
from hearth.store import ModelStore
from hearth.types import Message
from tests.conftest import private_hearth

QUESTION = [Message("user", "What is the capital of France? Answer in one word.")]


@pytest.fixture(scope="module", params=["q8_0", "q4_0"])
def quantized(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hearth]:
    yield from private_hearth(tmp_path_factory, f"kv-{request.param}", num_parallel=1, num_ctx=1024,
                              flash_attention="on", kv_cache_type=request.param, history=False)


def test_a_quantized_kv_cache_answers_correctly(quantized: Hearth) -> None:
    text = quantized.chat("smollm2:135m", QUESTION, parse_options({"temperature": 0, "num_predict": 12})).text()
    assert "Paris" in text


def test_the_estimate_counts_the_cache_type() -> None:
    shape = ModelShape("llama", "Q4_1", 134_515_008, 98_000_000, 30, 576, 9, 3, 64, 64, 1536, 49152, 8192)
    f16 = estimate(shape, 4096).kv_cache
    assert estimate(shape.with_kv("q8_0"), 4096).kv_cache == pytest.approx(f16 * 34 / 64, rel=0.01)
    assert estimate(shape.with_kv("q4_0"), 4096).kv_cache == pytest.approx(f16 * 18 / 64, rel=0.01)


def test_a_quantized_cache_without_flash_attention_is_refused_clearly(tmp_path_factory: pytest.TempPathFactory,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path_factory.mktemp("kv-refused")
    monkeypatch.setenv("HEARTH_HOME", str(home))
    service = Hearth(Settings(flash_attention="off", kv_cache_type="q8_0"), store=ModelStore(home))
    try:
        with pytest.raises(InvalidOptionError) as caught:
            service.load("smollm2:135m")
        assert caught.value.field == "kv_cache_type" and "flash attention" in caught.value.message
        assert service.ps() == []
    finally:
        service.close()
    with pytest.raises(InvalidOptionError):
        Settings().merged({"kv_cache_type": "q5_9"})
