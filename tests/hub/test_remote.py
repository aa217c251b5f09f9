"""Remote header reads: "will it fit?" for a model on the hub costs its header, not its weights."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from hearth.fit import read_shape
from hearth.hub import remote_shape, resolve
from tests.conftest import HEARTH, cli_env
from tests.hub.conftest import FILE, REPO, write_sparse_model
from tests.hub.fakehub import TOKEN, FakeHub


def test_a_remote_header_read_fetches_less_than_one_percent(fake_hub: FakeHub, tmp_path: Path) -> None:
    path = write_sparse_model(tmp_path / "Sparse-Llama-F16.gguf")
    fake_hub.add_repo("Test/Sparse-GGUF", {"Sparse-Llama-F16.gguf": path})
    plan = resolve("hf.co/Test/Sparse-GGUF")
    shape, handle = remote_shape(plan.file, plan.listing.commit)
    assert shape == read_shape(path)
    assert shape.n_vocab == 32000 and shape.n_ff == 8192 and shape.exact
    size = path.stat().st_size
    assert handle.fetched < size / 100
    assert fake_hub.bytes_sent() == handle.fetched  # nothing else was downloaded
    assert all(r.range is not None for r in fake_hub.seen("cdn"))


def test_the_remote_shape_of_the_bundled_model_matches_the_local_one(smol_repo: FakeHub, bundled_model: Path) -> None:
    plan = resolve(f"hf.co/{REPO}:Q4_1")
    shape, handle = remote_shape(plan.file, plan.listing.commit)
    assert shape == read_shape(bundled_model)
    header = 1_785_664  # where the bundled model's tensor data starts
    assert header <= handle.fetched <= header + (1 << 20)  # the header, plus at most one read-ahead window


def test_hearth_fit_on_a_remote_model_reads_only_its_header(fake_hub: FakeHub, tmp_path: Path, home: Path) -> None:
    path = write_sparse_model(tmp_path / "Sparse-Llama-F16.gguf")
    fake_hub.add_repo("Test/Sparse-GGUF", {"Sparse-Llama-F16.gguf": path})
    env = cli_env(home) | {"HF_ENDPOINT": fake_hub.url, "HF_TOKEN": TOKEN}
    result = subprocess.run([HEARTH, "fit", "hf.co/Test/Sparse-GGUF", "--json"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["header_read"] is True and report["quantization"] == "F16"
    assert report["verdict"] in ("fits", "tight", "too large")
    assert report["memory"]["weights"] == 1_204_813_824
    assert fake_hub.bytes_sent() < path.stat().st_size / 100
    assert " MB of 1.2 GB" in report["notes"][0]  # the header read, of the whole file


def test_hearth_fit_text_output_for_a_remote_repository(smol_repo: FakeHub, home: Path) -> None:
    env = cli_env(home) | {"HF_ENDPOINT": smol_repo.url, "HF_TOKEN": TOKEN}
    result = subprocess.run([HEARTH, "fit", f"hf.co/{REPO}", "--ctx", "2048"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for text in ("memory needed", "weights", "context cache", "compute", "verdict", "largest context",
                 "best quantization", "tokens/s", "Q8_0", "Q4_1", f"{FILE}'s header"):
        assert text in out, out
    assert "fits" in out
