"""The commands: `hearth pull`, `run --pull` with a catalog name, `search`, `catalog` — against the fake hub."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import HEARTH, cli_env
from tests.hub.conftest import FILE, REPO, write_tiny
from tests.hub.fakehub import TOKEN, FakeHub

QWEN = "bartowski/Qwen2.5-0.5B-Instruct-GGUF"  # the catalog's repository for qwen2.5:0.5b
CLOSED = "http://127.0.0.1:9"  # nothing listens on the discard port


def hearth(home: Path, hub: FakeHub | None, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = cli_env(home)
    env["HF_ENDPOINT"] = CLOSED  # never the real hub
    if hub is not None:
        env.update(HF_ENDPOINT=hub.url, HF_TOKEN=TOKEN)
    return subprocess.run([HEARTH, *args], env=env, capture_output=True, text=True, timeout=300, input=stdin)


def test_pull_then_list(smol_repo: FakeHub, home: Path) -> None:
    result = hearth(home, smol_repo, "pull", f"hf.co/{REPO}:Q4_1")
    assert result.returncode == 0, result.stderr
    local = f"hf.co/{REPO.lower()}:q4_1"
    assert f"pulled '{local}'" in result.stdout
    for status in ("pulling manifest", "pulling ", "verifying sha256 digest", "writing manifest", "success"):
        assert status in result.stderr
    listed = json.loads(hearth(home, None, "list", "--json").stdout)
    assert local in [m["name"] for m in listed]


@pytest.mark.parametrize(("name", "expected"), [
    ("nosuchmodel", "neither a model you have nor one in Hearth's catalog"),
    (f"hf.co/{REPO}:Q5_K_M", "no Q5_K_M file"),
    ("hf.co/Nobody/Nothing-GGUF", "was not found on Hugging Face"),
    ("hf.co/../../etc", "is not a Hugging Face repository id"),
])
def test_pull_errors_are_sentences_with_hints(smol_repo: FakeHub, home: Path, name: str, expected: str) -> None:
    result = hearth(home, smol_repo, "pull", name)
    assert result.returncode == 1
    assert expected in result.stderr and "Hint:" in result.stderr and "Traceback" not in result.stderr


def test_run_pulls_a_catalog_model_with_pull_and_answers(fake_hub: FakeHub, home: Path, bundled_model: Path) -> None:
    # The fake hub hosts the bundled model where the catalog expects qwen2.5:0.5b: the flow is what is tested.
    fake_hub.add_repo(QWEN, {"Qwen2.5-0.5B-Instruct-Q4_K_M.gguf": bundled_model})
    missing = hearth(home, fake_hub, "run", "qwen2.5:0.5b", "Say hi.", stdin="")
    assert missing.returncode == 1 and "not downloaded yet" in missing.stderr and "--pull" in missing.stderr
    assert fake_hub.seen("cdn") == []
    result = hearth(home, fake_hub, "run", "--pull", "qwen2.5:0.5b", "Say hi.", "-o", "num_predict=8", stdin="")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    shown = json.loads(hearth(home, None, "show", "qwen2.5:0.5b", "--json").stdout)
    assert shown["provenance"]["source"].startswith(f"hf.co/{QWEN}@")
    assert shown["provenance"]["license"] == "apache-2.0"  # from the catalog


def test_search_lists_repositories_with_sizes_and_fit_labels(smol_repo: FakeHub, home: Path,
                                                             tmp_path: Path) -> None:
    smol_repo.add_repo("Other/SmolThing-GGUF", {"thing-Q8_0.gguf": write_tiny(tmp_path / "t.gguf")}, downloads=5)
    text = hearth(home, smol_repo, "search", "smol")
    assert text.returncode == 0, text.stderr
    assert f"hf.co/{REPO}" in text.stdout and "Q4_1*" in text.stdout and "fits" in text.stdout
    assert text.stdout.index(REPO) < text.stdout.index("Other/SmolThing-GGUF")  # most downloaded first
    data = json.loads(hearth(home, smol_repo, "search", "smol", "--json").stdout)
    first = data[0]
    assert first["repo"] == REPO and first["default_quantization"] == "Q4_1"
    assert {q["quantization"]: q["size"] for q in first["quantizations"]}["Q4_1"] == smol_repo.file(REPO, FILE).size
    assert all(q["fit"] in ("fits", "tight", "too large") for q in first["quantizations"])


def test_catalog_lists_short_names_with_fit_labels_offline(home: Path) -> None:
    result = hearth(home, None, "catalog")
    assert result.returncode == 0, result.stderr
    assert "llama3.2:1b" in result.stdout and "qwen3:8b" in result.stdout and "fits" in result.stdout
    rows = json.loads(hearth(home, None, "catalog", "--json").stdout)
    assert all(r["fit"] in ("fits", "tight", "too large") for r in rows)


def test_fit_of_a_catalog_name_falls_back_to_the_catalog_offline(home: Path) -> None:
    result = hearth(home, None, "fit", "qwen3:8b", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["header_read"] is False and "estimated from the catalog" in report["notes"][0]
    assert report["quantization"] == "Q4_K_M"


def test_an_unreachable_hub_shows_only_hearths_own_sentence(home: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capfd: pytest.CaptureFixture[str]) -> None:
    from huggingface_hub.utils import _http

    from hearth.errors import DownloadError
    from hearth.fit import this_machine
    from hearth.hub import search

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setattr(_http.time, "sleep", lambda _: None)  # the library's back-off, without the wait
    with pytest.raises(DownloadError) as caught:
        search("qwen", this_machine(measure=False), 8 << 30)
    assert "could not reach Hugging Face" in caught.value.message
    assert "thrown while requesting" not in capfd.readouterr().err
    # this process had imported huggingface_hub's internals for the patch above: a fresh one has not
    fresh = subprocess.run([sys.executable, "-c", "from hearth.hub.client import hf; hf()"], capture_output=True,
                           text=True, timeout=60)
    assert fresh.returncode == 0, fresh.stderr
