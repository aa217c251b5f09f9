"""The estimator's arithmetic, verdicts and advice, on shapes whose numbers are known."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import gguf
import numpy as np
import pytest

from hearth.fit import (
    Machine,
    ModelShape,
    assess,
    cached_shape,
    estimate,
    largest_context,
    read_shape,
    refusal,
    tokens_per_second,
)
from hearth.fit import machine as machine_module
from hearth.fit.report import verdict
from hearth.hub import lookup

GB = 10**9
LLAMA_8B = ModelShape(architecture="llama", quantization="Q4_K_M", parameters=8_030_000_000,
                      weights_bytes=4_920_000_000, n_layer=32, n_embd=4096, n_head=32, n_head_kv=8, key_length=128,
                      value_length=128, n_ff=14336, n_vocab=128256, context_length=131072)


def laptop(total: float = 16, available: float = 10) -> Machine:
    return Machine(total=int(total * GB), available=int(available * GB), cores=8, bandwidth=50e9,
                   bandwidth_measured=True)


def test_kv_cache_is_layers_times_kv_heads_times_key_and_value_length() -> None:
    assert LLAMA_8B.kv_bytes_per_token == 32 * 8 * (128 + 128) * 2 == 131072
    est = estimate(LLAMA_8B, 4096, 1)
    assert est.kv_cache == 131072 * 4096  # 512 MiB, as llama.cpp reports for Llama 3 8B at 4k
    assert estimate(LLAMA_8B, 4096, 4).kv_cache == 4 * est.kv_cache
    assert est.total == est.weights + est.kv_cache + est.compute + est.runtime
    assert 100e6 < est.compute < 400e6 and est.runtime > 48 << 20


def test_the_context_is_padded_like_llama_cpp() -> None:
    assert estimate(LLAMA_8B, 1000, 1).kv_cache == estimate(LLAMA_8B, 1024, 1).kv_cache


def test_key_and_value_lengths_come_from_the_header_when_present(tmp_path: Path) -> None:
    path = tmp_path / "gemma-like.gguf"
    writer = gguf.GGUFWriter(str(path), arch="gemma3")
    writer.add_context_length(32768)
    writer.add_embedding_length(1152)
    writer.add_block_count(26)
    writer.add_head_count(4)
    writer.add_head_count_kv(1)
    writer.add_key_length(256)
    writer.add_value_length(256)
    writer.add_feed_forward_length(6912)
    writer.add_tensor("token_embd.weight", np.zeros((8, 1152), dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    shape = read_shape(path)
    assert (shape.key_length, shape.n_ff, shape.exact) == (256, 6912, True)  # not 1152 / 4 = 288
    assert shape.kv_bytes_per_token == 26 * 1 * 512 * 2


def test_the_bundled_models_shape(bundled_model: Path) -> None:
    shape = read_shape(bundled_model)
    assert (shape.n_layer, shape.n_head_kv, shape.key_length, shape.n_ff, shape.n_vocab) == (30, 3, 64, 1536, 49152)
    assert shape.kv_bytes_per_token == 23040  # what llama.cpp reports: 30 layers x 3 heads x 64 x 2 x 2 bytes
    assert shape.weights_bytes == 98_362_432 - 1_785_664


def test_a_catalog_entry_gives_the_same_kv_cache_as_its_architecture() -> None:
    match = lookup("llama3.1:8b")
    assert match is not None
    shape = ModelShape.from_catalog(match.entry.as_dict(), match.quant)
    assert shape.kv_bytes_per_token == 131072 and not shape.exact
    assert 4.5 * GB < shape.weights_bytes < 5.2 * GB  # Q4_K_M of 8B parameters


def test_largest_context_is_the_biggest_multiple_of_256_within_the_limit() -> None:
    limit = 6 * GB
    ctx = largest_context(LLAMA_8B, 1, limit)
    assert ctx is not None and ctx % 256 == 0
    assert estimate(LLAMA_8B, ctx, 1).total <= limit < estimate(LLAMA_8B, ctx + 256, 1).total
    assert largest_context(LLAMA_8B, 1, 100 * GB) == 131072  # capped at what the model was trained for
    assert largest_context(LLAMA_8B, 1, 1 * GB) is None


def test_verdicts() -> None:
    machine = laptop(total=16, available=10)
    budget = int(16 * GB * 0.8)
    assert verdict(5 * GB, machine, budget) == "fits"
    assert verdict(9 * GB, machine, budget) == "tight"  # within budget, but most of the free memory
    assert verdict(13 * GB, machine, budget) == "too large"


def test_assess_finds_the_best_quantization_that_fits_and_the_largest_context() -> None:
    machine = laptop(total=16, available=9)
    quants = {"Q8_0": 8_540_000_000, "Q6_K": 6_600_000_000, "Q4_K_M": 4_920_000_000, "Q2_K": 3_180_000_000,
              "F16": 16_100_000_000}
    report = assess("llama3.1:8b", LLAMA_8B, machine, budget=int(16 * GB * 0.8), n_ctx=4096, quants=quants)
    assert report.verdict == "fits"
    assert report.best is not None and report.best.quant == "Q6_K"  # Q8_0 would take more than 85% of free memory
    by_quant = {o.quant: o.verdict for o in report.options}
    assert by_quant["F16"] == "too large" and by_quant["Q8_0"] == "tight"
    assert [o.quant for o in report.options][:2] == ["F16", "Q8_0"]  # best quality first
    assert report.largest_context is not None and 4096 < report.largest_context < 131072
    assert json.loads(json.dumps(report.to_dict()))["best_quantization"] == "Q6_K"


def test_assess_without_a_listing_estimates_the_standard_quantizations() -> None:
    report = assess("x", LLAMA_8B, laptop(), budget=12 * GB, n_ctx=2048)
    assert {o.quant for o in report.options} >= {"Q8_0", "Q4_K_M", "Q2_K"}
    assert [o.size_known for o in report.options if o.quant == "Q4_K_M"] == [True]  # the model's own file
    assert all(not o.size_known for o in report.options if o.quant != "Q4_K_M")


def test_the_refusal_says_what_takes_the_memory_and_what_would_fit() -> None:
    est = estimate(LLAMA_8B, 32768, 1)
    message, hint = refusal("llama3.1:8b", LLAMA_8B, est, 8 * GB)
    assert "needs about" in message and "GB of weights" in message and "32768 tokens" in message
    assert "8.0 GB" in message
    assert "num_ctx=" in hint and "hearth fit llama3.1:8b" in hint
    too_big = replace(LLAMA_8B, weights_bytes=9 * GB)
    _, hint = refusal("big", too_big, estimate(too_big, 512, 1), 8 * GB)
    assert "num_ctx" not in hint and "quantization of it would fit" in hint


def test_speed_follows_bandwidth_and_size() -> None:
    fast = tokens_per_second(LLAMA_8B, 100e9, 8)
    slow = tokens_per_second(LLAMA_8B, 20e9, 8)
    assert 1 < slow < fast < 40
    small = replace(LLAMA_8B, weights_bytes=800_000_000, parameters=1_240_000_000)
    assert tokens_per_second(small, 20e9, 8) > 4 * slow
    moe = replace(LLAMA_8B, experts=8, experts_used=2)
    assert tokens_per_second(moe, 20e9, 8) > slow


def test_bandwidth_is_measured_once_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_measure(threads: int) -> float:
        calls.append(threads)
        return 12.5e9

    monkeypatch.setattr(machine_module, "measure_bandwidth", fake_measure)
    first = machine_module.this_machine(tmp_path)
    assert first.bandwidth == 12.5e9 and first.bandwidth_measured and len(calls) == 1
    cached = json.loads((tmp_path / "machine.json").read_text())
    assert cached["memory_bandwidth"] == 12_500_000_000
    assert machine_module.this_machine(tmp_path).bandwidth == 12.5e9 and len(calls) == 1
    monkeypatch.setattr(machine_module, "physical_cores", lambda: first.cores + 1)  # other hardware: measure again
    machine_module.this_machine(tmp_path)
    assert len(calls) == 2
    assert not machine_module.this_machine(tmp_path / "elsewhere", measure=False).bandwidth_measured


def test_a_real_bandwidth_measurement_is_plausible() -> None:
    bandwidth = machine_module.measure_bandwidth(1, array_bytes=32 << 20)
    assert 0.5e9 < bandwidth < 1000e9


def test_the_service_labels_local_models_for_listings(home: Path) -> None:
    from hearth.config import Settings
    from hearth.service import Hearth

    roomy = Hearth(Settings().merged({"num_parallel": 1}))
    cramped = Hearth(Settings().merged({"num_parallel": 1, "memory_budget": 50 << 20}))
    try:
        assert roomy.fit_labels() == {"smollm2:135m": "fits"}
        assert cramped.fit_labels() == {"smollm2:135m": "too large"}
    finally:
        roomy.close()
        cramped.close()


def _shape_in_a_new_process(model: Path, cache: Path) -> tuple[int, bool]:
    """(n_layer, whether the gguf package was imported) as a fresh Python process finds them."""
    code = ("import sys; from hearth.fit.shape import cached_shape; "
            f"shape = cached_shape({str(model)!r}, __import__('pathlib').Path({str(cache)!r})); "
            "print(shape.n_layer, 'gguf' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    layers, imported = done.stdout.split()
    return int(layers), imported == "True"


def test_a_models_shape_is_remembered_on_disk_while_the_file_is_unchanged(bundled_model: Path, tmp_path: Path) -> None:
    cache = tmp_path / "shapes.json"
    shape = cached_shape(bundled_model, cache)
    assert shape == read_shape(bundled_model)
    assert _shape_in_a_new_process(bundled_model, cache) == (30, False)  # from the file: no header, no gguf

    def rewrite(entry: dict, version: int = 1) -> None:
        cache.write_text(json.dumps({"version": version, "shapes": {str(bundled_model): entry}}))

    # what the file says is what the next process gets, while it was made for the same file
    [entry] = json.loads(cache.read_text())["shapes"].values()
    rewrite({**entry, "shape": {**entry["shape"], "n_layer": 99}})
    assert _shape_in_a_new_process(bundled_model, cache) == (99, False)
    # another Hearth's layout, a changed file (other size or time) or a damaged cache: the header is read again
    tampered = {**entry, "shape": {**entry["shape"], "n_layer": 99}}
    for stale, version in ((tampered, 0), ({**tampered, "size": entry["size"] + 1}, 1),
                           ({**entry, "shape": {"an": "older layout"}}, 1)):
        rewrite(stale, version)
        assert _shape_in_a_new_process(bundled_model, cache) == (30, True)
    cache.write_text("{not json")
    assert _shape_in_a_new_process(bundled_model, cache) == (30, True)
    assert json.loads(cache.read_text())["shapes"][str(bundled_model)]["shape"] == asdict(shape)  # rewritten
