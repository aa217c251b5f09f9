"""Pulling split GGUF models (gguf-split parts in a sub-folder) from the stand-in hub."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hearth.config import Settings
from hearth.errors import DownloadError
from hearth.fit import this_machine
from hearth.hub import fit_report, install, resolve
from hearth.hub.download import partial_path
from hearth.options import parse_options
from hearth.service import Hearth
from hearth.store import ModelStore
from tests.hub.conftest import SPLIT_FILES, SPLIT_REPO
from tests.hub.fakehub import FakeHub

NAME = f"hf.co/{SPLIT_REPO}:Q4_1"
LOCAL = f"hf.co/{SPLIT_REPO.lower()}:q4_1"
CHUNK = 10 << 20


def shas(hub: FakeHub) -> list[str]:
    return [hub.file(SPLIT_REPO, f).sha256 for f in SPLIT_FILES]


def test_the_listing_offers_the_split_set_as_one_quantization(split_repo: FakeHub) -> None:
    plan = resolve(f"hf.co/{SPLIT_REPO}")  # the default: the 4-bit set beats the single Q8_0 file
    assert [p.filename for p in plan.model.parts] == SPLIT_FILES and plan.file.filename == SPLIT_FILES[0]
    assert plan.model.size == sum(split_repo.file(SPLIT_REPO, f).size for f in SPLIT_FILES)
    assert resolve(f"hf.co/{SPLIT_REPO}:Q8_0").model.is_split is False


def test_a_split_model_is_pulled_part_by_part_and_answers(split_repo: FakeHub, home: Path,
                                                         smol_split_parts: list[Path]) -> None:
    events: list[dict[str, object]] = []
    hearth = Hearth(Settings().merged({"num_parallel": 1, "num_ctx": 512, "download_hosts": split_repo.cdn_url}))
    try:
        manifest = hearth.pull(NAME, events.append)
        assert manifest.name == LOCAL
        assert [p.digest for p in manifest.parts] == ["sha256:" + s for s in shas(split_repo)]
        assert [p.size for p in manifest.parts] == [p.stat().st_size for p in smol_split_parts]
        pulled = list(dict.fromkeys(str(e["digest"]) for e in events if "digest" in e))
        assert pulled == ["sha256:" + s for s in shas(split_repo)]  # one progress line per part, in order
        assert [e["status"] for e in events][-3:] == ["verifying sha256 digest", "writing manifest", "success"]
        path = hearth.store.model_path(manifest)
        assert path.name == "model-00001-of-00003.gguf"
        answer = hearth.generate(LOCAL, "Say hello.", parse_options({"num_predict": 8, "temperature": 0})).text()
        assert answer.strip()
    finally:
        hearth.close()
    assert list((home / "downloads").glob("*.partial")) == []


def test_a_cut_connection_in_part_two_resumes(split_repo: FakeHub, no_bundled: None) -> None:
    second = split_repo.file(SPLIT_REPO, SPLIT_FILES[1])
    second.faults.drop_at = 0.5
    store = ModelStore()
    install(store, resolve(NAME))
    assert [m.name for m in store.list()] == [LOCAL]
    gets = [r for r in split_repo.seen("cdn", "GET") if second.sha256 in r.path]
    assert len(gets) == 2 and gets[0].range is None and gets[1].range is not None
    resumed_at = int(gets[1].range.removeprefix("bytes=").split("-")[0])
    assert second.size * 0.5 - CHUNK <= resumed_at <= second.size * 0.5
    assert store.verify(LOCAL).parts == store.get(LOCAL).parts


def test_a_corrupt_part_three_is_refused_nothing_is_listed_and_only_it_is_fetched_again(
        split_repo: FakeHub, no_bundled: None) -> None:
    third = split_repo.file(SPLIT_REPO, SPLIT_FILES[2])
    third.faults.flip_offset = third.size // 2
    store = ModelStore()
    with pytest.raises(DownloadError) as caught:
        install(store, resolve(NAME))
    assert "part 3 of 3" in caught.value.message and SPLIT_FILES[2] in caught.value.message
    assert "not the file the hub advertises" in caught.value.message and caught.value.hint
    assert store.list() == [] and store.blobs.digests() == set()
    assert not (store.home / "sets").exists() or list((store.home / "sets").iterdir()) == []
    folder = store.home / "downloads"
    kept = sorted(p.name for p in folder.glob("*.partial"))
    assert kept == sorted(f"sha256-{s}.partial" for s in shas(split_repo)[:2])  # the good parts wait
    third.faults.flip_offset = None
    split_repo.clear()
    install(store, resolve(NAME))
    assert [m.name for m in store.list()] == [LOCAL]
    fetched = {r.path.split("/")[-1].split("?")[0] for r in split_repo.seen("cdn", "GET")}
    assert fetched == {third.sha256}


def test_fit_of_a_remote_split_model_reads_only_the_first_parts_header(split_repo: FakeHub, home: Path,
                                                                       bundled_model: Path) -> None:
    report = fit_report(ModelStore(), NAME, this_machine(measure=False), budget=8 << 30)
    first = shas(split_repo)[0]
    requests = split_repo.seen("cdn")
    assert requests and all(first in r.path and r.range is not None for r in requests)
    assert split_repo.bytes_sent() < split_repo.file(SPLIT_REPO, SPLIT_FILES[0]).size / 10
    whole = bundled_model.stat().st_size
    assert abs(report.shape.weights_bytes - (whole - 1_785_664)) < 64 << 10  # all three parts' weights
    assert abs(report.shape.parameters - 134_515_008) < 134_515_008 * 0.05  # estimated from the listed sizes
    assert "3 parts" in report.notes[0]


def test_a_partial_older_than_a_day_is_removed_when_a_pull_starts(split_repo: FakeHub, no_bundled: None,
                                                                   home: Path) -> None:
    folder = home / "downloads"
    folder.mkdir(parents=True)
    stale = folder / ("sha256-" + "a" * 64 + ".partial")
    fresh = folder / ("sha256-" + "b" * 64 + ".partial")
    for path in (stale, fresh):
        path.write_bytes(b"x" * 1000)
    old = os.path.getmtime(stale) - 2 * 86400
    os.utime(stale, (old, old))
    resumable = partial_path(folder, "sha256:" + shas(split_repo)[0])  # old, but this pull continues it
    resumable.write_bytes(smol_split_bytes(split_repo, 0)[:5000])
    os.utime(resumable, (old, old))
    split_repo.clear()
    install(ModelStore(), resolve(NAME))
    assert not stale.exists() and fresh.exists()
    first_gets = [r for r in split_repo.seen("cdn", "GET") if shas(split_repo)[0] in r.path]
    assert [r.range for r in first_gets] == ["bytes=5000-"]


def smol_split_bytes(hub: FakeHub, index: int) -> bytes:
    return hub.file(SPLIT_REPO, SPLIT_FILES[index]).path.read_bytes()
