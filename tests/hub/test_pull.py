"""Pulling from the fake hub: success, resume, stalls, corruption, tokens and a full disk."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hearth.config import Settings
from hearth.errors import ConflictError, DownloadError, InsufficientMemoryError, InsufficientStorageError, NotFoundError
from hearth.hub import install, resolve
from hearth.hub.download import partial_path
from hearth.options import parse_options
from hearth.service import Hearth
from hearth.store import ModelStore
from tests.hub.conftest import FILE, REPO
from tests.hub.fakehub import TOKEN, FakeHub

NAME = f"hf.co/{REPO}:Q4_1"
LOCAL = f"hf.co/{REPO.lower()}:q4_1"
CHUNK = 10 << 20  # huggingface_hub's download chunk: what a dropped connection may cost


def models(store: ModelStore) -> list[str]:
    return [m.name for m in store.list()]


def leftovers(store: ModelStore) -> list[str]:
    """Files a failed pull may have left: blobs, and partial downloads."""
    found = [p.name for p in (store.home / "blobs").glob("*")] if (store.home / "blobs").is_dir() else []
    folder = store.home / "downloads"
    return found + ([p.name for p in folder.glob("*.partial")] if folder.is_dir() else [])


def test_pull_through_the_service_reports_ollama_progress_and_the_model_chats(smol_repo: FakeHub, home: Path) -> None:
    events: list[dict[str, object]] = []
    hearth = Hearth(Settings().merged({"num_parallel": 1, "num_ctx": 512, "download_hosts": smol_repo.cdn_url}))
    try:
        manifest = hearth.pull(NAME, events.append)
        assert manifest.name == LOCAL
        assert manifest.provenance.source.startswith(f"hf.co/{REPO}@")
        assert manifest.provenance.license == "apache-2.0"
        statuses = [e["status"] for e in events]
        assert statuses[0] == "pulling manifest"
        assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
        pulling = [e for e in events if "total" in e]
        digest = "sha256:" + smol_repo.file(REPO, FILE).sha256
        assert pulling and all(e["digest"] == digest and e["status"] == f"pulling {digest[7:19]}" for e in pulling)
        assert pulling[-1]["completed"] == pulling[-1]["total"] == manifest.size
        assert [c["completed"] for c in pulling] == sorted(c["completed"] for c in pulling)
        answer = hearth.generate(LOCAL, "Say hello.", parse_options({"num_predict": 8, "temperature": 0})).text()
        assert answer.strip()
    finally:
        hearth.close()
    assert not (home / "downloads" / f"sha256-{digest[7:]}.partial").exists()


def test_a_second_pull_downloads_nothing(smol_repo: FakeHub, home: Path, no_bundled: None) -> None:
    store = ModelStore()
    install(store, resolve(NAME))
    smol_repo.clear()
    events: list[dict[str, object]] = []
    install(store, resolve(NAME), events.append)
    assert events == [{"status": "success"}]
    assert smol_repo.seen("cdn") == []


def test_a_dropped_connection_resumes_and_costs_at_most_a_chunk(smol_repo: FakeHub, no_bundled: None) -> None:
    hosted = smol_repo.file(REPO, FILE)
    hosted.faults.drop_at = 0.4
    store = ModelStore()
    install(store, resolve(NAME))
    assert models(store) == [LOCAL]
    gets = smol_repo.seen("cdn", "GET")
    assert len(gets) == 2 and gets[1].range is not None and gets[1].range.startswith("bytes=")
    resumed_at = int(gets[1].range.removeprefix("bytes=").split("-")[0])
    assert hosted.size * 0.4 - CHUNK <= resumed_at <= hosted.size * 0.4
    assert smol_repo.bytes_sent(hosted.sha256) <= hosted.size + CHUNK


def test_a_stall_is_detected_and_retried(smol_repo: FakeHub, monkeypatch: pytest.MonkeyPatch,
                                         no_bundled: None) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_DOWNLOAD_TIMEOUT", 1)
    hosted = smol_repo.file(REPO, FILE)
    hosted.faults.stall_at, hosted.faults.stall_seconds = 0.5, 4.0
    store = ModelStore()
    install(store, resolve(NAME))
    assert models(store) == [LOCAL]
    ranges = [r.range for r in smol_repo.seen("cdn", "GET")]
    assert ranges[0] is None and ranges[1] is not None  # the retry asked only for the rest


def _start_pull(home: Path, hub: FakeHub, *args: str) -> subprocess.Popen[str]:
    from tests.conftest import HEARTH, cli_env

    env = cli_env(home)
    env.update(HF_ENDPOINT=hub.url, HF_TOKEN=TOKEN, HF_HUB_DOWNLOAD_TIMEOUT="60")
    return subprocess.Popen([HEARTH, "pull", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _wait_for_partial(path: Path, at_least: int, process: subprocess.Popen[str]) -> None:
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size >= at_least:
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError("the download never got that far")


def test_a_killed_pull_continues_from_the_bytes_on_disk(smol_repo: FakeHub, home: Path) -> None:
    hosted = smol_repo.file(REPO, FILE)
    hosted.faults.stall_at, hosted.faults.stall_seconds = 0.4, 30.0
    partial = partial_path(home / "downloads", "sha256:" + hosted.sha256)
    first = _start_pull(home, smol_repo, NAME)
    _wait_for_partial(partial, int(hosted.size * 0.4) - CHUNK, first)
    first.kill()
    first.wait()
    on_disk = partial.stat().st_size
    assert 0 < on_disk < hosted.size
    smol_repo.clear()
    second = _start_pull(home, smol_repo, NAME)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert f"pulled '{LOCAL}'" in out
    downloads = [r for r in smol_repo.seen("cdn", "GET") if r.range is None or r.range.endswith("-")]
    assert [r.range for r in downloads] == [f"bytes={on_disk}-"]  # (the others read the header for the fit check)
    assert downloads[0].sent == hosted.size - on_disk
    assert not partial.exists()


def test_ctrl_c_pauses_the_download_with_a_sentence(smol_repo: FakeHub, home: Path) -> None:
    import signal

    hosted = smol_repo.file(REPO, FILE)
    hosted.faults.stall_at, hosted.faults.stall_seconds = 0.3, 30.0
    partial = partial_path(home / "downloads", "sha256:" + hosted.sha256)
    process = _start_pull(home, smol_repo, NAME)
    _wait_for_partial(partial, int(hosted.size * 0.3) - CHUNK, process)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130
    assert "Download paused" in err and f"hearth pull {NAME}" in err and "Traceback" not in err
    assert partial.exists()


@pytest.mark.parametrize("fault", ["flip", "truncate", "wrong_sha256"])
def test_a_bad_file_ends_in_a_clear_error_and_nothing_is_listed(smol_repo: FakeHub, fault: str,
                                                                 no_bundled: None) -> None:
    hosted = smol_repo.file(REPO, FILE)
    if fault == "flip":
        hosted.faults.flip_offset = hosted.size // 2
    elif fault == "truncate":
        hosted.faults.truncate_to = hosted.size - 12345
    else:
        hosted.faults.wrong_sha256 = True
    store = ModelStore()
    with pytest.raises(DownloadError) as caught:
        install(store, resolve(NAME))
    message = caught.value.message
    expected = "incomplete" if fault == "truncate" else "not the file the hub advertises"
    assert expected in message and caught.value.hint
    assert models(store) == []
    assert leftovers(store) == []


def test_a_redirect_to_the_cdn_never_receives_the_token(smol_repo: FakeHub, no_bundled: None,
                                                        tmp_path: Path) -> None:
    from tests.hub.conftest import write_tiny

    smol_repo.add_repo("Gated/Model-GGUF", {"model-Q8_0.gguf": write_tiny(tmp_path / "g.gguf")}, gated=True)
    store = ModelStore()
    install(store, resolve(NAME))
    install(store, resolve("hf.co/Gated/Model-GGUF"))  # the hub wants the token: it was sent there
    hub_requests, cdn_requests = smol_repo.seen("hub"), smol_repo.seen("cdn")
    assert hub_requests and all(r.authorization == f"Bearer {TOKEN}" for r in hub_requests)
    assert cdn_requests and all(r.authorization is None for r in cdn_requests)


def test_a_gated_repository_without_a_token_says_how_to_log_in(fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    from tests.hub.conftest import write_tiny

    monkeypatch.delenv("HF_TOKEN")
    fake_hub.add_repo("Gated/Model-GGUF", {"model-Q8_0.gguf": write_tiny(tmp_path / "g.gguf")}, gated=True)
    with pytest.raises(DownloadError) as caught:
        resolve("hf.co/Gated/Model-GGUF")
    assert "gated" in caught.value.message and "hf auth login" in (caught.value.hint or "")


def test_too_little_disk_space_is_refused_before_downloading(smol_repo: FakeHub, no_bundled: None) -> None:
    smol_repo.file(REPO, FILE).faults.advertised_size = 50 << 40  # 50 TB
    store = ModelStore()
    with pytest.raises(InsufficientStorageError) as caught:
        install(store, resolve(NAME))
    assert "not enough disk space" in caught.value.message and "HEARTH_HOME" in (caught.value.hint or "")
    assert smol_repo.seen("cdn") == []
    assert models(store) == [] and leftovers(store) == []


def test_a_disk_that_fills_up_midway_is_reported_cleanly(smol_repo: FakeHub, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch, no_bundled: None) -> None:
    mount = tmp_path / "small-disk"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs a small tmpfs (root)")
    try:
        real = shutil.disk_usage
        monkeypatch.setattr("hearth.hub.download.shutil.disk_usage",
                            lambda p: real(p)._replace(free=1 << 40))  # the pre-check believes there is room
        store = ModelStore(mount / "hearth")
        with pytest.raises(InsufficientStorageError) as caught:
            install(store, resolve(NAME))
        assert "disk filled up" in caught.value.message and "kept" in caught.value.message
        assert models(store) == []
        assert leftovers(store) == [f"sha256-{smol_repo.file(REPO, FILE).sha256}.partial"]  # for a later resume
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_download_already_running_elsewhere_is_refused(smol_repo: FakeHub, home: Path, no_bundled: None) -> None:
    import fcntl

    hosted = smol_repo.file(REPO, FILE)
    lock = partial_path(home / "downloads", "sha256:" + hosted.sha256).with_suffix(".lock")
    lock.parent.mkdir(parents=True)
    with open(lock, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        with pytest.raises(ConflictError):
            install(ModelStore(), resolve(NAME))


def test_a_missing_quantization_lists_the_available_ones(smol_repo: FakeHub) -> None:
    with pytest.raises(NotFoundError) as caught:
        resolve(f"hf.co/{REPO}:Q5_K_M")
    assert "no Q5_K_M file" in caught.value.message
    assert "Q8_0" in caught.value.message and "Q4_1" in caught.value.message
    assert f"hearth pull hf.co/{REPO}:Q8_0" in (caught.value.hint or "")


def test_the_default_quantization_is_chosen_sensibly(smol_repo: FakeHub) -> None:
    assert resolve(f"hf.co/{REPO}").file.quant == "Q4_1"  # no Q4_K_M here: the 4-bit file beats Q8_0
    assert resolve(f"hf.co/{REPO.lower()}:q8_0").file.filename == "SmolLM2-135M-Instruct-Q8_0.gguf"


def test_hostile_file_names_in_a_listing_are_refused(fake_hub: FakeHub, tmp_path: Path) -> None:
    from hearth.errors import InvalidNameError
    from tests.hub.conftest import write_tiny

    fake_hub.add_repo("Evil/Repo-GGUF", {"../../outside-Q8_0.gguf": write_tiny(tmp_path / "e.gguf")})
    with pytest.raises(InvalidNameError):
        resolve("hf.co/Evil/Repo-GGUF")


def test_a_split_model_with_a_part_missing_says_so(fake_hub: FakeHub, tmp_path: Path) -> None:
    from tests.hub.conftest import write_tiny

    fake_hub.add_repo("Big/Split-GGUF", {"big-Q4_K_M-00001-of-00003.gguf": write_tiny(tmp_path / "a.gguf"),
                                         "big-Q4_K_M-00003-of-00003.gguf": write_tiny(tmp_path / "b.gguf")})
    with pytest.raises(NotFoundError) as caught:
        resolve("hf.co/Big/Split-GGUF")
    assert "missing parts" in caught.value.message and caught.value.hint


def test_a_model_too_large_for_memory_is_refused_before_its_weights_are_fetched(smol_repo: FakeHub,
                                                                                no_bundled: None) -> None:
    hearth = Hearth(Settings().merged({"memory_budget": 100 << 20, "num_parallel": 1,
                                       "download_hosts": smol_repo.cdn_url}))
    try:
        with pytest.raises(InsufficientMemoryError) as caught:
            hearth.pull(NAME)
        assert "would need about" in caught.value.message and "--force" in (caught.value.hint or "")
        hosted = smol_repo.file(REPO, FILE)
        assert smol_repo.bytes_sent(hosted.sha256) < hosted.size * 0.05  # the header only
        assert models(hearth.store) == []
        assert hearth.pull(NAME, force=True).name == LOCAL
    finally:
        hearth.close()


def test_unreachable_hub_is_a_sentence_with_a_hint(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    with pytest.raises(DownloadError) as caught:
        resolve("hf.co/Some/Repo-GGUF")
    assert "could not reach Hugging Face" in caught.value.message and caught.value.hint


def test_a_connection_that_keeps_closing_early_fails_cleanly_and_resumes_later(smol_repo: FakeHub,
                                                                               no_bundled: None) -> None:
    hosted = smol_repo.file(REPO, FILE)
    hosted.faults.drop_at, hosted.faults.drop_times = 0.6, 1000  # right Content-Length, body cut at 60%, every time
    store = ModelStore()
    with pytest.raises(DownloadError) as caught:
        install(store, resolve(NAME))
    assert "stopped at" in caught.value.message and "resume" in (caught.value.hint or "")
    assert models(store) == []
    partial = partial_path(store.home / "downloads", "sha256:" + hosted.sha256)
    kept = partial.stat().st_size
    assert hosted.size * 0.6 - CHUNK <= kept <= hosted.size * 0.6  # kept for the next attempt
    hosted.faults.drop_times = 0
    smol_repo.clear()
    install(store, resolve(NAME))
    assert models(store) == [LOCAL]
    assert [r.range for r in smol_repo.seen("cdn", "GET")] == [f"bytes={kept}-"]


HOSTILE = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"


def test_a_file_whose_chat_template_cannot_be_used_is_refused_and_nothing_is_kept(
        fake_hub: FakeHub, no_bundled: None, tmp_path: Path) -> None:
    from hearth.errors import TemplateError
    from tests.store.store_samples import write_tiny_model

    bad = write_tiny_model(tmp_path / "Hostile-Q8_0.gguf", chat_template=HOSTILE)
    fake_hub.add_repo("TestOwner/Hostile-GGUF", {"Hostile-Q8_0.gguf": bad})
    store = ModelStore()
    with pytest.raises(TemplateError) as caught:
        install(store, resolve("hf.co/TestOwner/Hostile-GGUF:Q8_0"))
    assert "cannot be used" in caught.value.message and caught.value.hint
    assert models(store) == [] and leftovers(store) == []
    service = Hearth(Settings(history=False), store=store)
    try:
        with pytest.raises(TemplateError):
            service.import_file(bad, "hostile")
        assert service.list_models() == []
        good = write_tiny_model(tmp_path / "Fine-Q8_0.gguf")
        assert service.import_file(good, "fine").name == "fine:latest"
    finally:
        service.close()
