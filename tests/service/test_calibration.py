"""The real calibration on the bundled model: measured once on the first load and stored, reused by the next
service without measuring, overridden by settings you give, re-run and printed by `hearth tune`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from hearth.config import Settings
from hearth.engine import WorkerClient, WorkerConfig
from hearth.fit.tuning import load_calibrations
from hearth.options import parse_options
from hearth.service import Hearth, tuning
from hearth.store import ModelStore
from hearth.types import Message
from tests.conftest import HEARTH, cli_env

QUESTION = [Message("user", "What is the capital of France? Answer in one word.")]
OPTIONS = {"temperature": 0, "num_predict": 6}


class Counting:
    """A client factory that remembers every worker configuration it started."""

    def __init__(self) -> None:
        self.configs: list[WorkerConfig] = []

    def __call__(self, config: WorkerConfig) -> WorkerClient:
        self.configs.append(config)
        return WorkerClient(config)


def _answer(home: Path, factory: Counting, **settings: object) -> tuple[str, Hearth]:
    service = Hearth(Settings(num_parallel=1, num_ctx=512, history=False, **settings),  # type: ignore[arg-type]
                     store=ModelStore(home), client_factory=factory)
    return service.chat("smollm2:135m", QUESTION, parse_options(OPTIONS)).text(), service


def test_the_first_load_measures_and_keeps_the_winner_the_next_reuses_it_and_yours_win(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tuning, "AUTO_TUNE", True)
    first = Counting()
    text, service = _answer(tmp_path, first)
    try:
        assert "Paris" in text
        assert [c.n_ctx for c in first.configs] == [64, 512]  # the measuring worker, then the model's own
        stored = list(load_calibrations(tmp_path).values())
        assert len(stored) == 1
        tuned = stored[0].tuned
        assert {"on": 1, "off": 0}[tuned.flash_attention] == first.configs[1].flash_attn
        assert (first.configs[1].n_threads, first.configs[1].n_batch) == (tuned.threads, tuned.batch)
        assert all(t.prompt > 0 and t.decode_empty > 0 and t.decode_deep > 0 for _, t in stored[0].trials[:2])
        engine, calibration = service.engine_settings("smollm2:135m")
        assert calibration == stored[0] and set(dict(engine.why).values()) == {"measured"}
    finally:
        service.close()

    again = Counting()
    _, service = _answer(tmp_path, again)
    service.close()
    assert [c.n_ctx for c in again.configs] == [512]  # nothing measured a second time
    assert again.configs[0].n_batch == tuned.batch

    yours = Counting()
    text, service = _answer(tmp_path, yours, flash_attention="on", num_threads=1)
    try:
        assert "Paris" in text and [c.n_ctx for c in yours.configs] == [512]
        assert (yours.configs[0].flash_attn, yours.configs[0].n_threads) == (1, 1)
        engine, _ = service.engine_settings("smollm2:135m")
        assert engine.describe() == (f"flash attention on (set by you), 1 threads (set by you), "
                                     f"batch {tuned.batch} (measured)")
    finally:
        service.close()


def test_tuning_off_loads_with_the_defaults_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tuning, "AUTO_TUNE", True)
    factory = Counting()
    _, service = _answer(tmp_path, factory, tune=False)
    try:
        assert [c.n_ctx for c in factory.configs] == [512] and not (tmp_path / "tuning.json").exists()
        engine, calibration = service.engine_settings("smollm2:135m")
        assert calibration is None and engine.flash_attention == "off" and engine.batch == 512
        assert set(dict(engine.why).values()) == {"default"}
    finally:
        service.close()


def test_hearth_tune_prints_the_trials_keeps_them_and_show_says_measured(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    done = subprocess.run([HEARTH, "tune", "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["model"] == "smollm2:135m" and len(data["trials"]) >= 3
    assert {row["trial"]["flash_attn"] for row in data["trials"]} == {True, False}
    assert data["in_force"]["flash_attention"] == data["tuned"]["flash_attention"]
    assert "Measured in" in done.stderr
    assert list(load_calibrations(tmp_path).values())[0].to_dict()["tuned"] == data["tuned"]

    table = subprocess.run([HEARTH, "tune"], env=env, capture_output=True, text=True, timeout=300)
    assert table.returncode == 0, table.stderr
    assert "FLASH ATTN" in table.stdout and "fastest here: flash attention" in table.stdout
    shown = subprocess.run([HEARTH, "show", "smollm2:135m"], env=env, capture_output=True, text=True, timeout=120)
    latest = list(load_calibrations(tmp_path).values())[0].tuned  # the second `hearth tune` measured again
    assert f"flash attention {latest.flash_attention} (measured)" in shown.stdout
    pinned = subprocess.run([HEARTH, "show", "smollm2:135m"], env={**env, "HEARTH_FLASH_ATTENTION": "on"},
                            capture_output=True, text=True, timeout=120)
    assert "flash attention on (set by you)" in pinned.stdout
