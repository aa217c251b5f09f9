"""Calibration's choices, driven by fake timings (the measuring function is the layer above the engine), and
where its results are kept: keyed, atomic, private, and a damaged file counts as no measurement."""

from __future__ import annotations

import json
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from hearth.fit import ModelShape
from hearth.fit.tuning import (
    Calibration,
    Timing,
    Trial,
    Tuned,
    calibrate,
    calibrated_speed,
    find_calibration,
    load_calibrations,
    save_calibration,
    shape_key,
    tuning_key,
    turn_seconds,
)

SHAPE = ModelShape("llama", "Q4_1", 134_515_008, 96_576_768, 30, 576, 9, 3, 64, 64, 1536, 49152, 8192)


def machine(*, fa_on: Timing, fa_off: Timing, fewer_threads: float = 0.0,
            batch_256: float = 0.0) -> tuple[list[Trial], object]:
    """A measuring function answering from a table, and the list of trials it was asked for."""
    asked: list[Trial] = []

    def measure(trial: Trial) -> Timing:
        asked.append(trial)
        base = fa_on if trial.flash_attn else fa_off
        if trial.depth == 0:  # the decode-threads trial
            return Timing(decode_empty=fewer_threads or base.decode_empty)
        if trial.gen == 0:  # the prompt-batch trial
            return Timing(prompt=batch_256 if trial.batch == 256 and batch_256 else base.prompt)
        return base
    return asked, measure


XEON_OFF = Timing(decode_empty=83, prompt=299, decode_deep=71)  # measured on the Xeon (bundled model)
XEON_ON = Timing(decode_empty=100, prompt=315, decode_deep=50)
EPYC_OFF = Timing(decode_empty=94, prompt=200, decode_deep=75)  # issue 13's llama-bench figures, shaped alike
EPYC_ON = Timing(decode_empty=109, prompt=299, decode_deep=80)


def test_flash_attention_off_wins_where_decoding_slows_down_at_depth() -> None:
    asked, measure = machine(fa_on=XEON_ON, fa_off=XEON_OFF)
    tuned, rows = calibrate(measure, 2)  # type: ignore[arg-type]
    assert tuned == Tuned("off", 2, 512)
    assert [t.flash_attn for t in asked[:2]] == [False, True] and len(rows) == len(asked) == 4


def test_flash_attention_on_wins_where_it_is_faster_at_every_depth() -> None:
    _, measure = machine(fa_on=EPYC_ON, fa_off=EPYC_OFF)
    tuned, rows = calibrate(measure, 2)  # type: ignore[arg-type]
    assert tuned.flash_attention == "on"
    assert all(trial.flash_attn for trial, _ in rows[2:])  # later trials build on the winner


def test_a_challenger_within_the_margin_does_not_replace_the_default() -> None:
    off = Timing(decode_empty=100, prompt=300, decode_deep=80)
    on = Timing(decode_empty=101, prompt=303, decode_deep=81)  # 1 % better: noise
    _, measure = machine(fa_on=on, fa_off=off, fewer_threads=102, batch_256=306)
    assert calibrate(measure, 2)[0] == Tuned("off", 2, 512)  # type: ignore[arg-type]


def test_one_fewer_decode_thread_and_a_smaller_batch_win_when_clearly_faster() -> None:
    _, measure = machine(fa_on=XEON_ON, fa_off=XEON_OFF, fewer_threads=95, batch_256=340)
    assert calibrate(measure, 4)[0] == Tuned("off", 3, 256)  # type: ignore[arg-type]


def test_one_core_is_not_asked_about_fewer_threads() -> None:
    asked, measure = machine(fa_on=XEON_ON, fa_off=XEON_OFF)
    tuned, _ = calibrate(measure, 1)  # type: ignore[arg-type]
    assert tuned.threads == 1 and all(t.threads == 1 for t in asked)


def test_a_quantized_cache_is_only_measured_with_flash_attention() -> None:
    asked, measure = machine(fa_on=XEON_ON, fa_off=XEON_OFF)
    tuned, _ = calibrate(measure, 2, quantized_kv=True)  # type: ignore[arg-type]
    assert tuned.flash_attention == "on" and all(t.flash_attn for t in asked)


def test_a_typical_turn_costs_more_when_decoding_slows_at_depth() -> None:
    assert turn_seconds(XEON_ON) > turn_seconds(XEON_OFF)
    assert turn_seconds(EPYC_ON) < turn_seconds(EPYC_OFF)
    assert turn_seconds(Timing()) == float("inf")


DEFAULT = Tuned("off", 2, 512)


def _calibration(tuned: Tuned = DEFAULT, decode: float = 83.0) -> Calibration:
    rows = ((Trial(False, 2, 2, 512), Timing(decode, 299, 71)), (Trial(True, 2, 2, 512), Timing(100, 315, 50)))
    return Calibration(tuned, rows, 6.9, "2026-12-03T18:50:34+0000", "Test CPU [abc]", SHAPE.weights_bytes)


def test_calibrations_are_kept_per_key_privately_and_read_back_equal(tmp_path: Path) -> None:
    one, other = tuning_key(SHAPE, 2, "b1", "cpu A"), tuning_key(SHAPE, 2, "b2", "cpu A")
    save_calibration(one, _calibration(), tmp_path)
    save_calibration(other, _calibration(Tuned("on", 1, 256)), tmp_path)
    assert find_calibration(one, tmp_path) == _calibration()
    assert find_calibration(other, tmp_path).tuned == Tuned("on", 1, 256)  # type: ignore[union-attr]
    assert find_calibration(tuning_key(SHAPE, 4, "b1", "cpu A"), tmp_path) is None  # another core count
    assert stat.S_IMODE((tmp_path / "tuning.json").stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["tuning.json"]  # no temporary file left


def test_the_key_changes_with_the_cpu_the_build_the_cores_and_the_shape() -> None:
    base = tuning_key(SHAPE, 2, "b1", "cpu A")
    for other in (tuning_key(SHAPE, 2, "b1", "cpu B"), tuning_key(SHAPE, 2, "b2", "cpu A"),
                  tuning_key(SHAPE, 4, "b1", "cpu A"), tuning_key(replace(SHAPE, kv_type="q8_0"), 2, "b1", "cpu A"),
                  tuning_key(replace(SHAPE, quantization="Q8_0"), 2, "b1", "cpu A")):
        assert other != base
    assert shape_key(SHAPE) in base


@pytest.mark.parametrize("damage", [b"{not json", b"[]", b'{"version": 99, "entries": {}}',
                                    b'{"version": 1, "entries": {"k": {"tuned": {"flash_attention": "maybe", '
                                    b'"threads": 2, "batch": 512}}}}', b"\xff\xfe"])
def test_a_damaged_file_counts_as_no_measurement_and_is_replaced_whole(tmp_path: Path, damage: bytes) -> None:
    (tmp_path / "tuning.json").write_bytes(damage)
    assert load_calibrations(tmp_path) == {}
    save_calibration("k2", _calibration(), tmp_path)
    assert list(json.loads((tmp_path / "tuning.json").read_text())["entries"]) == ["k2"]


def test_one_damaged_entry_does_not_hide_the_others(tmp_path: Path) -> None:
    save_calibration("good", _calibration(), tmp_path)
    data = json.loads((tmp_path / "tuning.json").read_text())
    data["entries"]["bad"] = {"tuned": {"threads": "x"}}
    (tmp_path / "tuning.json").write_text(json.dumps(data))
    assert list(load_calibrations(tmp_path)) == ["good"]


def test_fit_uses_the_measured_speed_of_this_shape_and_corrects_estimates_of_similar_ones(tmp_path: Path) -> None:
    def predict(shape: ModelShape) -> float:  # an estimate that is half the truth, inversely to size
        return 4e9 / shape.weights_bytes

    assert calibrated_speed(SHAPE, predict, 2, "b1", tmp_path) is None  # nothing measured yet
    save_calibration(tuning_key(SHAPE, 2, "b1"), _calibration(decode=83.0), tmp_path)
    speed, source = calibrated_speed(SHAPE, predict, 2, "b1", tmp_path)  # type: ignore[misc]
    assert speed == 83.0 and source.startswith("measured on this machine (2026-12-03")
    bigger = replace(SHAPE, weights_bytes=SHAPE.weights_bytes * 2, parameters=SHAPE.parameters * 2)
    speed, source = calibrated_speed(bigger, predict, 2, "b1", tmp_path)  # type: ignore[misc]
    assert speed == pytest.approx(83.0 / 2) and source.startswith("estimated, corrected")
    far = replace(SHAPE, weights_bytes=SHAPE.weights_bytes * 10)
    assert calibrated_speed(far, predict, 2, "b1", tmp_path) is None  # too unlike anything measured
    assert calibrated_speed(bigger, predict, 2, "another build", tmp_path) is None


def test_large_models_get_shorter_trials_so_measuring_stays_short() -> None:
    from hearth.fit.tuning import DEPTH, GEN, MIN_DEPTH, MIN_GEN, trial_size

    assert trial_size(SHAPE.weights_bytes) == (DEPTH, GEN)  # the bundled model: full length
    depth, gen = trial_size(512 << 20)
    assert MIN_DEPTH < depth < DEPTH and MIN_GEN <= gen < GEN
    assert trial_size(40 << 30) == (MIN_DEPTH, MIN_GEN)
    asked, measure = machine(fa_on=Timing(100, 200, 80), fa_off=Timing(100, 200, 90))
    calibrate(measure, 2, depth=depth, gen=gen)  # type: ignore[arg-type]
    assert {t.depth for t in asked} <= {0, depth} and {t.gen for t in asked} <= {0, gen}
    assert any(t.depth == depth for t in asked) and any(t.gen == gen for t in asked)


def test_a_prompt_batch_must_win_by_more_than_noise() -> None:
    off = Timing(decode_empty=100, prompt=300, decode_deep=80)
    _, measure = machine(fa_on=off, fa_off=off, batch_256=320)  # 7 %: within one run's noise here
    assert calibrate(measure, 2)[0].batch == 512  # type: ignore[arg-type]
    _, measure = machine(fa_on=off, fa_off=off, batch_256=345)  # 15 %
    assert calibrate(measure, 2)[0].batch == 256  # type: ignore[arg-type]
