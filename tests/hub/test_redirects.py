"""Redirect safety: the hub may send a download on only to trusted https hosts, never to local addresses."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx2
import pytest

from hearth.errors import UnsafeRedirectError
from hearth.hub import install, resolve
from hearth.hub.redirects import _drop_foreign_token, check_redirect
from hearth.store import ModelStore
from tests.conftest import HEARTH, cli_env
from tests.hub.conftest import REPO
from tests.hub.fakehub import TOKEN, FakeHub

NAME = f"hf.co/{REPO}:Q4_1"
HUB = "https://huggingface.co"
DEFAULT = ("hf.co", "*.hf.co", "huggingface.co", "*.huggingface.co")


@pytest.fixture
def elsewhere() -> FakeHub:
    """Another server on loopback, where a hostile hub would like Hearth to go."""
    other = FakeHub().start()
    yield other
    other.stop()


def test_a_redirect_to_another_loopback_port_is_refused(smol_repo: FakeHub, elsewhere: FakeHub,
                                                        no_bundled: None) -> None:
    smol_repo.redirect_to = elsewhere.url
    store = ModelStore()
    with pytest.raises(UnsafeRedirectError) as caught:
        install(store, resolve(NAME))
    port = elsewhere.url.rsplit(":", 1)[1]
    assert f"refused to follow the hub's redirect to http://127.0.0.1:{port}" in caught.value.message
    assert "download_hosts" in (caught.value.hint or "")
    assert elsewhere.seen() == []  # not one request reached it
    assert store.list() == []


def test_the_command_shows_the_refusal_as_a_sentence(smol_repo: FakeHub, elsewhere: FakeHub, home: Path) -> None:
    smol_repo.redirect_to = elsewhere.url
    env = cli_env(home) | {"HF_ENDPOINT": smol_repo.url, "HF_TOKEN": TOKEN}
    result = subprocess.run([HEARTH, "pull", NAME], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "refused to follow the hub's redirect" in result.stderr and "Hint:" in result.stderr
    assert "Traceback" not in result.stderr and elsewhere.seen() == []


@pytest.mark.parametrize(("target", "why"), [
    ("http://cdn-lfs.hf.co/blob", "only https"),
    ("https://evil.example.com/blob", "not one of the download hosts"),
    ("https://hf.co.evil.example.com/blob", "not one of the download hosts"),
    ("https://127.0.0.1/blob", "not one of the download hosts"),
])
def test_the_default_hosts_allow_only_the_hubs_cdn(target: str, why: str) -> None:
    with pytest.raises(UnsafeRedirectError) as caught:
        check_redirect(target, HUB, DEFAULT)
    assert why in caught.value.message


@pytest.mark.parametrize(("target", "kind"), [
    ("https://localhost/x", "loopback"),
    ("https://10.1.2.3/x", "private"),
    ("https://169.254.169.254/latest/meta-data", "link-local"),
    ("https://[::1]/x", "loopback"),
])
def test_a_listed_host_on_a_local_address_is_still_refused(target: str, kind: str) -> None:
    host = target.split("/")[2].strip("[]")
    with pytest.raises(UnsafeRedirectError) as caught:
        check_redirect(target, HUB, (*DEFAULT, host, "localhost"))
    assert kind in caught.value.message


def test_what_may_be_followed() -> None:
    check_redirect("https://huggingface.co/api/resolve-cache/x", HUB, DEFAULT)  # the hub's own origin
    check_redirect("http://127.0.0.1:8000/b", "http://127.0.0.1:8000", ())  # a local mirror, itself
    check_redirect("http://127.0.0.1:9000/b", "http://127.0.0.1:8000", ("http://127.0.0.1:9000",))  # written out
    with pytest.raises(UnsafeRedirectError):
        check_redirect("http://127.0.0.1:9001/b", "http://127.0.0.1:8000", ("http://127.0.0.1:9000",))


def test_the_token_goes_to_the_hub_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:8000")
    to_hub = httpx2.Request("GET", "http://127.0.0.1:8000/x", headers={"Authorization": "Bearer t"})
    to_cdn = httpx2.Request("GET", "https://127.0.0.1:8000/x", headers={"Authorization": "Bearer t"})
    _drop_foreign_token(to_hub)
    _drop_foreign_token(to_cdn)  # same host, another scheme (httpx would keep it on an http → https hop)
    assert to_hub.headers.get("Authorization") == "Bearer t" and "Authorization" not in to_cdn.headers
