"""The page's routes in-process (over the fake service): files and headers, conversations, pairing and the guard."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from hearth.config import Settings
from hearth.history import Entry
from hearth.server import create_app
from hearth.service.devices import CODE_TTL, MAX_FAILURES, Devices
from tests.server.fakes import FakeHearth

LOCAL = "http://127.0.0.1:11435"
LAN = "192.0.2.10"
PHONE = ("192.0.2.77", 40000)  # a client off loopback
LAN_ORIGIN = f"http://{LAN}:11435"


@pytest.fixture
def fake(home: Path) -> FakeHearth:
    return FakeHearth()


@pytest.fixture
def local(fake: FakeHearth) -> Iterator[TestClient]:
    with TestClient(create_app(fake, Settings()), base_url=LOCAL, client=("127.0.0.1", 5000),
                    raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def phone(fake: FakeHearth) -> Iterator[TestClient]:
    """A browser on the LAN talking to `hearth serve --lan 192.0.2.10`."""
    with TestClient(create_app(fake, Settings(lan=LAN)), base_url=LAN_ORIGIN, client=PHONE,
                    raise_server_exceptions=False) as client:
        yield client


def seed(fake: FakeHearth, question: str = "What is a hearth?") -> str:
    history = fake.conversations.open()
    try:
        return history.start("chat", [Entry("user", question), Entry("assistant", "A fireplace.")])
    finally:
        history.close()


# -- the page -------------------------------------------------------------------------------------------------
def test_browsers_get_the_page_with_a_strict_policy_and_api_clients_the_plain_line(local: TestClient) -> None:
    page = local.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    for directive in ("default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'",
                      "frame-ancestors 'none'", "base-uri 'none'"):
        assert directive in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "*" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "<script type=\"module\" src=\"/web/app.js\"></script>" in page.text
    assert "onclick=" not in page.text and "style=" not in page.text  # nothing inline for the policy to refuse
    probe = local.get("/")  # what Ollama clients and health checks send
    assert probe.text == "Hearth is running" and probe.headers["content-type"].startswith("text/plain")
    assert local.head("/").status_code == 200


def test_page_files_are_served_and_nothing_else(local: TestClient) -> None:
    js = local.get("/web/app.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert local.get("/web/app.js", headers={"If-None-Match": js.headers["etag"]}).status_code == 304
    assert local.get("/web/vendor/purify.min.js").status_code == 200
    for path in ("/web/../../config.py", "/web/%2e%2e/__init__.py", "/web/__init__.py", "/web/vendor/marked.LICENSE",
                 "/web/.hidden.js", "/web/nope.js", "/web/vendor//purify.min.js"):
        assert local.get(path).status_code == 404, path


def test_the_page_and_its_vendored_libraries_ship_with_their_licenses() -> None:
    vendor = Path(__file__).parents[2] / "src" / "hearth" / "web" / "vendor"
    for library in ("marked", "dompurify", "highlight"):
        assert (vendor / f"{library}.LICENSE").stat().st_size > 500
    assert not any("sourceMappingURL" in p.read_text(errors="replace") for p in vendor.glob("*.js"))


# -- conversations --------------------------------------------------------------------------------------------
def test_conversations_list_get_rename_fork_search_and_delete(local: TestClient, fake: FakeHearth) -> None:
    cid = seed(fake)
    seed(fake, "Another question about bread")
    listed = local.get("/api/conversations").json()["conversations"]
    assert [c["title"] for c in listed] == ["Another question about bread", "What is a hearth?"]
    got = local.get(f"/api/conversations/{cid}").json()
    assert [(m["position"], m["role"]) for m in got["messages"]] == [(1, "user"), (2, "assistant")]
    assert got["branches"] == []
    assert local.patch(f"/api/conversations/{cid}", json={"title": "Fireplaces"}).json()["title"] == "Fireplaces"
    fork = local.post(f"/api/conversations/{cid}/fork", json={"at": 1}).json()
    assert fork["parent_id"] == cid and fork["parent_at"] == 1 and fork["message_count"] == 1
    assert [b["id"] for b in local.get(f"/api/conversations/{cid}").json()["branches"]] == [fork["id"]]
    hits = local.get("/api/conversations", params={"q": "bread"}).json()["conversations"]
    assert [h["title"] for h in hits] == ["Another question about bread"] and "bread" in hits[0]["snippet"]
    assert local.delete(f"/api/conversations/{cid}").json()["deleted"] == 1
    assert local.get(f"/api/conversations/{cid}").status_code == 404


def test_conversation_routes_refuse_bad_input_with_400_or_404(local: TestClient, fake: FakeHearth) -> None:
    cid = seed(fake)
    assert local.post(f"/api/conversations/{cid}/fork", json={"at": 9}).status_code == 400
    assert local.post(f"/api/conversations/{cid}/fork", json={"at": -1}).status_code == 400
    assert local.post(f"/api/conversations/{cid}/fork", json={"at": "x"}).status_code == 400
    assert local.patch(f"/api/conversations/{cid}", json={"title": "x" * 3000}).status_code == 400
    assert local.patch(f"/api/conversations/{cid}", json={"name": "x"}).status_code == 400
    assert local.get("/api/conversations/nope-nope").status_code == 404
    assert local.get("/api/conversations", params={"limit": 0}).status_code == 400
    assert local.post("/api/extract", params={"name": "a.pdf"}, content=b"").status_code == 400
    broken = local.post("/api/extract", params={"name": "a.pdf"}, content=b"%PDF-1.4 not really")
    assert broken.status_code == 400 and "a.pdf cannot be attached" in broken.json()["error"]


def test_conversation_routes_are_refused_to_other_origins(local: TestClient, fake: FakeHearth) -> None:
    cid = seed(fake)
    for method, path in (("GET", "/api/conversations"), ("DELETE", f"/api/conversations/{cid}"),
                         ("PATCH", f"/api/conversations/{cid}")):
        answer = local.request(method, path, headers={"Origin": "https://evil.example"}, json={"title": "x"})
        assert answer.status_code == 403 and "access-control-allow-origin" not in answer.headers
    assert local.get(f"/api/conversations/{cid}").status_code == 200  # still there


# -- pairing --------------------------------------------------------------------------------------------------
def test_an_unpaired_phone_sees_the_page_but_no_api(phone: TestClient) -> None:
    assert phone.get("/", headers={"Accept": "text/html"}).status_code == 200
    assert phone.get("/web/app.js").status_code == 200
    for method, path in (("GET", "/api/tags"), ("GET", "/api/conversations"), ("POST", "/api/chat"),
                         ("GET", "/v1/models"), ("GET", "/metrics")):
        answer = phone.request(method, path, json={})
        assert answer.status_code == 401, path
        assert "hearth devices pair" in answer.text


def test_a_pairing_code_works_once_and_its_cookie_opens_the_api(phone: TestClient, fake: FakeHearth) -> None:
    code = fake.devices.new_code().code
    assert phone.post("/api/pair", json={"code": code}).status_code == 403  # no Origin: not from the page
    paired = phone.post("/api/pair", json={"code": code.lower()[:5] + "-" + code.lower()[5:]},
                        headers={"Origin": LAN_ORIGIN, "User-Agent": "Phone Browser"})
    assert paired.status_code == 200
    cookie = paired.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower() and "Path=/" in cookie
    assert phone.get("/api/tags").status_code == 200
    again = phone.post("/api/pair", json={"code": code}, headers={"Origin": LAN_ORIGIN})
    assert again.status_code == 401 and "already used or expired" in again.json()["error"]
    # a state change riding the cookie must come from the page itself
    assert phone.post("/api/chat", json={"model": "fake", "messages": []}).status_code == 403
    assert phone.post("/api/chat", json={"model": "fake", "messages": [{"role": "user", "content": "hi"}],
                                         "stream": False}, headers={"Origin": LAN_ORIGIN}).status_code == 200
    device = fake.devices.list()[0]
    assert device.name == "Phone Browser"
    fake.devices.revoke(device.id[:4])
    assert phone.get("/api/tags").status_code == 401


def test_expired_and_guessed_codes_are_refused(fake: FakeHearth, home: Path) -> None:
    now = [1000.0]
    devices = Devices(home, clock=lambda: now[0])
    code = devices.new_code().code
    now[0] += CODE_TTL + 1
    with pytest.raises(Exception, match="expired"):
        devices.redeem(code, "late")
    live = devices.new_code().code
    for guess in range(MAX_FAILURES):
        with pytest.raises(Exception, match="wrong"):
            devices.redeem(f"WRONG{guess:05d}", "guesser")
    with pytest.raises(Exception, match="wrong"):  # too many guesses cancel every code in force
        devices.redeem(live, "owner")
    assert devices.list() == []


def test_the_devices_file_is_private_and_holds_no_secret(fake: FakeHearth, home: Path) -> None:
    code = fake.devices.new_code().code
    device, token = fake.devices.redeem(code, "laptop")
    path = home / "devices.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert token not in text and code not in text
    assert json.loads(text)["devices"][device.id]["name"] == "laptop"
    assert fake.devices.check(token) and not fake.devices.check(token[:-1] + "x") and not fake.devices.check("")


def test_a_damaged_devices_file_is_refused_not_overwritten(fake: FakeHearth, home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "devices.json").write_text("{not json")
    with pytest.raises(Exception, match="damaged"):
        fake.devices.new_code()
    assert (home / "devices.json").read_text() == "{not json"
