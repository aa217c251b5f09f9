"""Partial downloads: kept for a resume after a full disk, listed with their size, cleaned on request."""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from hearth.errors import InsufficientStorageError
from hearth.hub import clean, install, leftovers, resolve
from hearth.hub.download import partial_path
from hearth.store import ModelStore
from tests.conftest import HEARTH, cli_env
from tests.hub.conftest import FILE, REPO
from tests.hub.fakehub import FakeHub

NAME = f"hf.co/{REPO}:Q4_1"


def _cut_download(hub: FakeHub, store: ModelStore) -> Path:
    """A pull whose connection keeps closing at 60%: it fails, leaving its partial file."""
    hosted = hub.file(REPO, FILE)
    hosted.faults.drop_at, hosted.faults.drop_times = 0.6, 1000
    with pytest.raises(Exception):  # noqa: B017 - DownloadError, tested in test_pull.py
        install(store, resolve(NAME))
    hosted.faults.drop_times = 0
    return partial_path(store.home / "downloads", "sha256:" + hosted.sha256)


def test_a_full_disk_is_refused_before_downloading_and_keeps_what_was_fetched(
        smol_repo: FakeHub, no_bundled: None, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ModelStore()
    partial = _cut_download(smol_repo, store)
    kept = partial.stat().st_size
    real = shutil.disk_usage
    monkeypatch.setattr("hearth.hub.download.shutil.disk_usage", lambda p: real(p)._replace(free=10 << 20))
    smol_repo.clear()
    with pytest.raises(InsufficientStorageError) as caught:
        install(store, resolve(NAME))
    assert "not enough disk space" in caught.value.message and "kept" in (caught.value.hint or "")
    assert smol_repo.seen("cdn", "GET") == [] and partial.stat().st_size == kept and store.list() == []
    monkeypatch.setattr("hearth.hub.download.shutil.disk_usage", real)
    install(store, resolve(NAME))
    assert [r.range for r in smol_repo.seen("cdn", "GET")] == [f"bytes={kept}-"]
    assert [m.name for m in store.list()] == [f"hf.co/{REPO.lower()}:q4_1"]


def test_leftovers_say_what_they_are_and_clean_spares_a_running_download(smol_repo: FakeHub, no_bundled: None,
                                                                         tmp_path: Path) -> None:
    store = ModelStore()
    partial = _cut_download(smol_repo, store)
    folder = store.home / "downloads"
    [found] = leftovers(folder)
    assert found.path == partial and found.size == partial.stat().st_size and not found.busy
    assert found.source == f"hf.co/{REPO}/{FILE}" and found.total == smol_repo.file(REPO, FILE).size
    with open(partial.with_suffix(".lock"), "r+b") as handle:  # another process is downloading it
        fcntl.flock(handle, fcntl.LOCK_EX)
        assert leftovers(folder)[0].busy and clean(folder) == [] and partial.exists()
    assert [r.path for r in clean(folder, older_than=3600)] == []  # written just now
    assert [r.path for r in clean(folder)] == [partial]
    assert not partial.exists() and not partial.with_suffix(".lock").exists() and leftovers(folder) == []


def test_list_all_and_pull_clean(smol_repo: FakeHub, home: Path) -> None:
    store = ModelStore()
    partial = _cut_download(smol_repo, store)
    env = cli_env(home)
    listed = subprocess.run([HEARTH, "list", "--all"], env=env, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert f"hf.co/{REPO}/{FILE}" in listed.stdout and "partial downloads" in listed.stdout
    assert "of 98 MB" in listed.stdout and "last written just now" in listed.stdout
    data = json.loads(subprocess.run([HEARTH, "list", "--all", "--json"], env=env, capture_output=True,
                                     text=True, timeout=60).stdout)
    assert [p["size"] for p in data["partial_downloads"]] == [partial.stat().st_size]
    cleaned = subprocess.run([HEARTH, "pull", "--clean"], env=env, capture_output=True, text=True, timeout=60)
    assert cleaned.returncode == 0, cleaned.stderr
    assert f"deleted the partial download of hf.co/{REPO}/{FILE}" in cleaned.stdout and not partial.exists()
    again = subprocess.run([HEARTH, "pull", "--clean"], env=env, capture_output=True, text=True, timeout=60)
    assert "no partial downloads to delete" in again.stdout
    bare = subprocess.run([HEARTH, "pull"], env=env, capture_output=True, text=True, timeout=60)
    assert bare.returncode == 1 and "say which model to pull" in bare.stderr and "Traceback" not in bare.stderr
