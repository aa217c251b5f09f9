"""Fixtures for the document tests: the real embedding model (converted once by scripts/build-embedder.sh) and
a service with it and the bundled chat model."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hearth.service import BUNDLED_NAME, Hearth
from tests.conftest import private_hearth

ROOT = Path(__file__).resolve().parents[2]
EMBEDDER = ROOT / ".build" / "models" / "all-MiniLM-L6-v2.f16.gguf"
EMBEDDER_NAME = "all-minilm"


@pytest.fixture(scope="session")
def embedder_gguf() -> Path:
    """all-MiniLM-L6-v2 as an f16 GGUF (made by `make setup`; made here once if a run skipped that)."""
    if not EMBEDDER.is_file():
        env = {**os.environ, "PY": sys.executable}
        done = subprocess.run([str(ROOT / "scripts" / "build-embedder.sh")], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=1200)
        if done.returncode != 0 or not EMBEDDER.is_file():
            pytest.fail(f"scripts/build-embedder.sh could not make {EMBEDDER}:\n{done.stderr[-3000:]}")
    return EMBEDDER


@pytest.fixture(scope="module")
def docs_hearth(tmp_path_factory: pytest.TempPathFactory, embedder_gguf: Path) -> Iterator[Hearth]:
    """A service with the embedding model installed (and the bundled chat model, always there)."""
    for service in private_hearth(tmp_path_factory, "docs", num_parallel=1, tune=False, max_loaded_models=2):
        service.import_file(embedder_gguf, EMBEDDER_NAME)
        yield service


CHAT_MODEL = BUNDLED_NAME
