"""The guard in front of every route: Host (DNS rebinding), Origin (CORS/CSRF), API key, body size."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Iterator

import pytest
from starlette.testclient import TestClient

from hearth.config import Settings
from hearth.errors import InvalidOptionError
from hearth.server import check_bind
from hearth.server.security import Policy
from tests.server.fakes import FakeHearth

ROUTES = [
    ("GET", "/health"), ("GET", "/metrics"), ("GET", "/openapi.json"), ("GET", "/"),
    ("GET", "/v1/models"), ("POST", "/v1/chat/completions"), ("POST", "/v1/completions"), ("POST", "/v1/embeddings"),
    ("GET", "/api/version"), ("GET", "/api/tags"), ("POST", "/api/show"), ("GET", "/api/ps"), ("POST", "/api/chat"),
    ("POST", "/api/generate"), ("POST", "/api/embed"), ("DELETE", "/api/delete"), ("POST", "/api/copy"),
    ("GET", "/no/such/route"),
]
CHAT = {"model": "fake", "messages": [{"role": "user", "content": "hi"}], "stream": False}


@pytest.mark.parametrize("host", ["evil.example", "evil.example:11435", "127.0.0.1.evil.example",
                                  "localhost.evil.example:11435", "[::2]:11435", "10.1.2.3", ""])
@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_foreign_host_header_gets_403_on_every_route(client: TestClient, host: str, method: str, path: str) -> None:
    response = client.request(method, path, headers={"Host": host}, json=CHAT)
    assert response.status_code == 403
    assert "Host" in response.text
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize("host", ["localhost", "localhost:11435", "127.0.0.1", "127.0.0.1:9999", "[::1]",
                                  "[::1]:11435", "LOCALHOST:11435", "localhost."])
def test_loopback_host_headers_are_served(client: TestClient, host: str) -> None:
    assert client.get("/api/tags", headers={"Host": host}).status_code == 200


def test_allowed_hosts_setting_adds_names(make_client: Callable[..., TestClient]) -> None:
    client = make_client(allowed_hosts=("hearth.lan", "*.home.arpa"))
    assert client.get("/api/tags", headers={"Host": "hearth.lan:11435"}).status_code == 200
    assert client.get("/api/tags", headers={"Host": "box.home.arpa"}).status_code == 200
    assert client.get("/api/tags", headers={"Host": "evil.example"}).status_code == 403


def test_bound_address_is_an_allowed_host() -> None:
    policy = Policy.from_settings(Settings(host="192.168.1.7", api_key="k"))
    assert policy.host_allowed("192.168.1.7:11435")
    assert not policy.host_allowed("192.168.1.8:11435")


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://localhost:3000", "http://127.0.0.1:1",
                                    "http://localhost:11435.evil.example"])
def test_foreign_origin_gets_no_cors_and_is_refused(client: TestClient, origin: str) -> None:
    response = client.post("/api/chat", headers={"Origin": origin}, json=CHAT)
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers
    preflight = client.options("/api/chat", headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                                     "Access-Control-Request-Headers": "content-type"})
    assert "access-control-allow-origin" not in preflight.headers
    assert client.get("/v1/models", headers={"Origin": origin}).status_code == 403


def test_cross_site_simple_post_has_no_effect(client: TestClient, fake: FakeHearth) -> None:
    response = client.request("DELETE", "/api/delete", content=json.dumps({"model": "fake"}),
                              headers={"Origin": "https://evil.example", "Content-Type": "text/plain"})
    assert response.status_code == 403
    assert "fake:latest" in fake.store.models


def test_own_origin_and_allow_list_get_cors(make_client: Callable[..., TestClient]) -> None:
    client = make_client(cors_origins=("https://app.example",))
    for origin in ("http://localhost:11435", "http://127.0.0.1:11435", "https://app.example"):
        response = client.get("/v1/models", headers={"Origin": origin})
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == origin
        assert "access-control-allow-credentials" not in response.headers
        preflight = client.options("/v1/chat/completions", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"})
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == origin
        assert "POST" in preflight.headers["access-control-allow-methods"]


@pytest.fixture
def keyed(make_client: Callable[..., TestClient]) -> Iterator[TestClient]:
    yield make_client(api_key="s3cret-key")


# public: the health check and the page
@pytest.mark.parametrize(("method", "path"), [r for r in ROUTES if r[1] not in ("/health", "/")])
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-key"},
                                     {"Authorization": "Basic s3cret-key"}, {"X-Api-Key": "nope"},
                                     {"Authorization": "Bearer s3cret-ke"}, {"Authorization": "Bearer s3cret-key2"}])
def test_missing_or_wrong_key_gets_401(keyed: TestClient, method: str, path: str, headers: dict[str, str]) -> None:
    response = keyed.request(method, path, headers=headers, json=CHAT)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "s3cret" not in response.text
    body = response.json()
    assert "error" in body
    if path.startswith("/v1/"):
        assert body["error"]["type"] == "authentication_error"


def test_right_key_is_accepted(keyed: TestClient) -> None:
    assert keyed.get("/api/tags", headers={"Authorization": "Bearer s3cret-key"}).status_code == 200
    assert keyed.get("/v1/models", headers={"X-Api-Key": "s3cret-key"}).status_code == 200
    assert keyed.post("/api/chat", headers={"Authorization": "bearer s3cret-key"}, json=CHAT).status_code == 200
    assert keyed.get("/health").status_code == 200  # liveness needs no key


def test_key_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    policy = Policy.from_settings(Settings(api_key="k3y"))
    assert policy.key_ok({b"authorization": b"Bearer k3y"})
    assert not policy.key_ok({b"authorization": b"Bearer k3z"})
    assert seen == [(b"k3y", b"k3y"), (b"k3z", b"k3y")]


def test_body_over_the_limit_gets_413(make_client: Callable[..., TestClient], fake: FakeHearth) -> None:
    client = make_client(fake, max_body_bytes=1000)
    big = {"model": "fake", "messages": [{"role": "user", "content": "x" * 2000}], "stream": False}
    for path in ("/api/chat", "/v1/chat/completions"):
        response = client.post(path, json=big)
        assert response.status_code == 413, response.text
        assert "limit" in response.text

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"model": "fake", "messages": [{"role": "user", "content": "'
        for _ in range(20):
            yield b"y" * 100
        yield b'"}]}'

    response = client.post("/api/chat", content=chunks())
    assert response.status_code == 413
    assert fake.calls == []
    assert client.post("/api/chat", json=CHAT).status_code == 200


def test_non_loopback_bind_needs_a_key() -> None:
    for host in ("0.0.0.0", "::", "192.168.1.5", "example.org", ""):
        with pytest.raises(Exception, match="without an API key"):
            check_bind(Settings(host=host))
        check_bind(Settings(host=host, api_key="k"))
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        check_bind(Settings(host=host))


def test_every_origin_allowed_warns_on_loopback_and_refuses_beyond_it(capsys: pytest.CaptureFixture[str]) -> None:
    check_bind(Settings(host="127.0.0.1", cors_origins=("*",)))
    assert "every web page" in capsys.readouterr().err
    check_bind(Settings(host="127.0.0.1", cors_origins=("https://app.example",)))
    assert capsys.readouterr().err == ""
    with pytest.raises(InvalidOptionError) as caught:
        check_bind(Settings(host="0.0.0.0", api_key="k", cors_origins=("*",)))
    assert caught.value.field == "cors_origins"
