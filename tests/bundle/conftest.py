"""Fixtures for the bundle tests: a source store with real models, its bundle, and empty target stores."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hearth.config import Settings
from hearth.service import Hearth
from hearth.store import ModelStore, bundled

TERSE = "Answer in as few words as you can."


def service_on(home: Path) -> Hearth:
    """A `Hearth` on a store of its own at `home`."""
    return Hearth(Settings(), store=ModelStore(home))


@pytest.fixture(scope="session")
def source(tmp_path_factory: pytest.TempPathFactory, bundled_model: Path) -> Iterator[Hearth]:
    """A store with the built-in model, `smol:blob` (the same weights kept as a blob) and a persona on it."""
    home = tmp_path_factory.mktemp("source-home")
    old = os.environ.get("HEARTH_HOME")
    os.environ["HEARTH_HOME"] = str(home)
    service = service_on(home)
    service.import_file(bundled_model, "smol:blob")
    service.create("terse", f"FROM smol:blob\nSYSTEM {TERSE}\nPARAMETER temperature 0\n")
    yield service
    service.close()
    if old is None:
        os.environ.pop("HEARTH_HOME", None)
    else:
        os.environ["HEARTH_HOME"] = old


@pytest.fixture(scope="session")
def pristine(source: Hearth, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle (models only) of `smol:blob` and `terse`, written once; copy it before changing it."""
    folder = tmp_path_factory.mktemp("pristine") / "bundle"
    source.export_bundle(folder, ["smol:blob", "terse"], wheels=False)
    return folder


@pytest.fixture
def stick(pristine: Path, tmp_path: Path) -> Path:
    """A copy of the pristine bundle that a test may damage."""
    return Path(shutil.copytree(pristine, tmp_path / "stick"))


@pytest.fixture
def target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hearth]:
    """An empty store (without the built-in model) to import into."""
    monkeypatch.setattr(bundled, "locate", lambda: None)
    service = service_on(tmp_path / "target-home")
    yield service
    service.close()


@pytest.fixture
def flip() -> Callable[[Path, int], None]:
    """Flip one bit of a file at an offset (negative: from the end)."""
    def flip_byte(path: Path, offset: int) -> None:
        with open(path, "r+b") as handle:
            handle.seek(offset, os.SEEK_SET if offset >= 0 else os.SEEK_END)
            where = handle.tell()
            value = handle.read(1)[0]
            handle.seek(where)
            handle.write(bytes([value ^ 0x01]))
    return flip_byte
