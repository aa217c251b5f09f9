"""Shared fixtures: a private HEARTH_HOME per test, and the real bundled model."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from hearth.store.bundled import require

if TYPE_CHECKING:
    from hearth.service import Hearth

HEARTH = str(Path(sys.executable).with_name("hearth"))
# No test measures engine settings on a model's first load (seconds each, in a thousand fresh homes) unless it
# asks to: `hearth` subprocesses read HEARTH_TUNE, in-process services the Tuner's switch (`no_auto_tune`).
os.environ["HEARTH_TUNE"] = "0"


@pytest.fixture(autouse=True)
def no_auto_tune(monkeypatch: pytest.MonkeyPatch) -> None:
    """Calibration off for in-process services; the calibration tests turn it back on."""
    from hearth.service import tuning

    monkeypatch.setattr(tuning, "AUTO_TUNE", False)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty HEARTH_HOME for this test."""
    path = tmp_path / "hearth-home"
    monkeypatch.setenv("HEARTH_HOME", str(path))
    return path


@pytest.fixture(scope="session")
def bundled_model() -> Path:
    """The bundled SmolLM2-135M-Instruct GGUF file."""
    return require()


@pytest.fixture(scope="session")
def session_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A HEARTH_HOME shared by the slower end-to-end tests (the bundled model registered once)."""
    path = tmp_path_factory.mktemp("session-home")
    old = os.environ.get("HEARTH_HOME")
    os.environ["HEARTH_HOME"] = str(path)
    yield path
    if old is None:
        os.environ.pop("HEARTH_HOME", None)
    else:
        os.environ["HEARTH_HOME"] = old
    shutil.rmtree(path, ignore_errors=True)


def cli_env(home: Path) -> dict[str, str]:
    """Environment for running the real `hearth` command against `home`."""
    env = dict(os.environ)
    env["HEARTH_HOME"] = str(home)
    env.pop("HEARTH_HOST", None)
    return env


def private_hearth(tmp_path_factory: pytest.TempPathFactory, label: str, **settings: Any) -> Iterator[Hearth]:
    """A `Hearth` on a store and HEARTH_HOME of its own, closed afterwards (`yield from` it in a fixture)."""
    from hearth.config import Settings
    from hearth.service import Hearth
    from hearth.store import ModelStore

    home = tmp_path_factory.mktemp(label)
    os.environ["HEARTH_HOME"] = str(home)
    service = Hearth(Settings(**settings), store=ModelStore(home))
    yield service
    service.close()
