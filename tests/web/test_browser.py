"""The web page in a real browser (Debian's Chromium through Playwright) against a live `hearth serve`."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pexpect
import pytest

from tests.conftest import HEARTH, cli_env
from tests.documents.files import write_pdf
from tests.history.test_cli_history import chat
from tests.server.conftest import ServerProcess, wait_for
from tests.web.conftest import HUB_REPO, PageWatch, hearth_run, screenshot

pytestmark = pytest.mark.slow
DONE = ".msg.assistant:not(.streaming) .meta"
AXE = Path(__file__).with_name("vendor") / "axe.min.js"


def choose(tab: Any, model: str) -> None:
    values = tab.locator("#model option").evaluate_all("os => os.map(o => o.value)")
    tab.select_option("#model", next(v for v in values if v in (model, f"{model}:latest")))


def set_max_tokens(tab: Any, n: int) -> None:
    if tab.is_hidden("#settings"):
        tab.click("#settings-toggle")
    tab.fill("#max-tokens", str(n))


def send(tab: Any, text: str) -> None:
    tab.fill("#input", text)
    tab.keyboard.press("Enter")


def answers(tab: Any) -> list[str]:
    return [t.strip() for t in tab.locator(".msg.assistant .content").all_inner_texts()]


def wait_answered(tab: Any, count: int = 1, timeout: float = 120_000) -> None:
    tab.wait_for_function(f"() => document.querySelectorAll('{DONE}').length >= {count} && !document.body.classList"
                          ".contains('busy')", timeout=timeout)


def conversation(web: ServerProcess, cid: str) -> dict[str, Any]:
    return dict(httpx.get(f"{web.url}/api/conversations/{cid}", timeout=10).json())


def current_id(tab: Any) -> str:
    return str(tab.evaluate("localStorage.getItem('hearth.conversation')"))


def test_an_answer_streams_token_by_token_and_survives_a_reload(page: tuple[Any, PageWatch],
                                                                 web: ServerProcess) -> None:
    tab, watch = page
    choose(tab, "smollm2:135m")
    set_max_tokens(tab, 40)
    tab.evaluate("""() => {
        window.__lengths = [];
        new MutationObserver(() => {
            const live = document.querySelector('.msg.assistant.streaming .content');
            if (live) window.__lengths.push(live.textContent.length);
        }).observe(document.getElementById('messages'), {subtree: true, childList: true, characterData: true});
    }""")
    send(tab, "Describe the sea in three sentences.")
    wait_answered(tab)
    lengths = tab.evaluate("window.__lengths")
    assert len(set(lengths)) >= 4, f"the answer did not grow piece by piece: {lengths}"
    assert lengths == sorted(lengths)
    answer = answers(tab)[0]
    assert answer
    assert "tokens/s" in tab.inner_text(DONE)
    cid = current_id(tab)
    recorded = conversation(web, cid)
    assert [m["role"] for m in recorded["messages"]] == ["user", "assistant"]
    assert recorded["messages"][1]["content"].strip()[:20] in answer
    tab.reload()
    tab.wait_for_selector("body[data-ready=true]")
    assert answers(tab)[0] == answer  # the same conversation is open again, from the server
    assert tab.locator("#conversations li.current").count() == 1
    assert not watch.errors and not watch.violations() and not watch.foreign_requests()


def test_stop_ends_the_answer_and_frees_the_slot(page: tuple[Any, PageWatch], web: ServerProcess) -> None:
    tab, _ = page
    choose(tab, "smollm2:135m")
    set_max_tokens(tab, 1500)
    send(tab, "Write a very long story about a lighthouse keeper and the storm, with many chapters.")
    tab.wait_for_function("() => (document.querySelector('.msg.assistant.streaming .content')?.textContent || '')"
                          ".length > 20", timeout=60_000)
    assert any(m["in_flight"] for m in web.ps())
    tab.keyboard.press("Escape")
    wait_answered(tab)
    assert "stopped" in tab.inner_text(DONE)
    assert wait_for(lambda: all(m["in_flight"] == 0 and not m.get("slots_busy") for m in web.ps()), timeout=10)
    assert tab.is_visible("#send") and tab.is_hidden("#stop")


def test_regenerate_and_edit_keep_every_branch(page: tuple[Any, PageWatch], web: ServerProcess) -> None:
    tab, _ = page
    choose(tab, "scripted")
    send(tab, "ECHO: the first answer")
    wait_answered(tab)
    original = current_id(tab)
    tab.click("text=Regenerate")
    tab.wait_for_function(f"() => localStorage.getItem('hearth.conversation') !== '{original}'")
    wait_answered(tab)
    regenerated = current_id(tab)
    assert "Branch of an earlier conversation" in tab.inner_text("#branch-info")
    tab.click("#branch-info >> text=Open the original")
    tab.wait_for_function(f"() => localStorage.getItem('hearth.conversation') === '{original}'")
    tab.click(".msg.user >> text=Edit")
    tab.fill(".msg.user textarea.edit", "ECHO: an edited question")
    tab.click("text=Send edited")
    tab.wait_for_function(f"() => localStorage.getItem('hearth.conversation') !== '{original}'")
    wait_answered(tab)
    edited = current_id(tab)
    assert answers(tab) == ["an edited question"]
    branches = conversation(web, original)["branches"]
    assert {b["id"] for b in branches} == {regenerated, edited}
    assert conversation(web, original)["messages"][0]["content"] == "ECHO: the first answer"
    tab.wait_for_function("() => [...document.querySelectorAll('#conversations button.conv')].map(b => b.textContent)"
                          ".filter(t => t.startsWith('ECHO: ')).length === 3")  # every version is in the sidebar
    titles = tab.locator("#conversations button.conv").all_inner_texts()
    assert titles.count("ECHO: the first answer") == 2 and "ECHO: an edited question" in titles


def test_a_run_from_the_terminal_is_listed_and_continues_in_the_page(page: tuple[Any, PageWatch],
                                                                      web: ServerProcess, web_home: Path) -> None:
    tab, _ = page
    hearth_run(web_home, "Name one colour of the rainbow.")
    tab.fill("#search", "colour of the rainbow")
    tab.wait_for_selector("#conversations button.conv:has-text('Name one colour')")
    tab.click("#conversations button.conv:has-text('Name one colour')")
    tab.wait_for_selector(".msg.assistant")
    choose(tab, "smollm2:135m")
    set_max_tokens(tab, 8)
    send(tab, "And another one?")
    wait_answered(tab, 2)
    recorded = conversation(web, current_id(tab))
    assert recorded["source"] == "run" and len(recorded["messages"]) == 4


def test_a_pull_shows_its_progress_and_the_model_appears(page: tuple[Any, PageWatch], web: ServerProcess) -> None:
    tab, _ = page
    tab.click("#models-panel summary")
    tab.evaluate("""() => {
        window.__pull = [];
        new MutationObserver(() => window.__pull.push(document.getElementById('pull-status').textContent))
            .observe(document.getElementById('pull-status'), {childList: true, characterData: true, subtree: true});
    }""")
    name = f"hf.co/{HUB_REPO}:Q4_1"
    tab.fill("#pull-name", name)
    tab.click("#pull-form button[type=submit]")
    tab.wait_for_function("() => document.getElementById('pull-status').textContent.endsWith('is ready')",
                          timeout=120_000)
    seen = tab.evaluate("window.__pull")
    assert any(" of " in s and "MB" in s for s in seen), seen  # bytes counted as they arrived
    assert tab.evaluate("document.getElementById('pull-progress').value") > 0
    options = tab.locator("#model option").all_inner_texts()
    assert any(o.startswith(name.lower()) or "smollm2-135m-instruct-gguf" in o.lower() for o in options), options


def test_attached_markdown_and_pdf_go_into_the_message(page: tuple[Any, PageWatch], web: ServerProcess,
                                                       tmp_path: Path) -> None:
    tab, _ = page
    choose(tab, "smollm2:135m")
    set_max_tokens(tab, 4)
    pdf = write_pdf(tmp_path / "report.pdf", ["The lighthouse code word is AMBERGRIS.", "Page two says TIDEPOOL."])
    tab.set_input_files("#file", [{"name": "notes.md", "mimeType": "text/markdown",
                                   "buffer": b"# Notes\n\nThe secret ingredient is CARDAMOM.\n"},
                                  {"name": "report.pdf", "mimeType": "application/pdf", "buffer": pdf.read_bytes()}])
    tab.wait_for_function("() => [...document.querySelectorAll('#attachments .chip')].filter(c => "
                          "c.textContent.includes('tokens')).length === 2", timeout=60_000)
    send(tab, "What do the files say?")
    wait_answered(tab)
    question = conversation(web, current_id(tab))["messages"][0]["content"]
    assert "CARDAMOM" in question and "AMBERGRIS" in question and "[page 2]" in question
    assert "What do the files say?" in question


def test_an_attachment_too_long_for_the_context_is_cut_with_a_warning(page: tuple[Any, PageWatch]) -> None:
    tab, _ = page
    choose(tab, "smollm2:135m")
    long_text = " ".join(f"word{i}" for i in range(6000)).encode()
    tab.set_input_files("#file", [{"name": "long.txt", "mimeType": "text/plain", "buffer": long_text}])
    chip = tab.wait_for_selector("#attachments .chip.warning", timeout=60_000)
    text = chip.inner_text()
    assert "too long for the 2,048-token context" in text and "only the first" in text


HOSTILE = "ECHO: " + "\n\n".join([  # separate blocks: some are HTML blocks, some Markdown with inline HTML
    "<script>window.__pwned = 1</script>",
    "Inline <img src=x onerror=\"window.__pwned = 2\"> image",
    "[click me](javascript:window.__pwned=3)",
    "<iframe src=\"javascript:window.__pwned=4\"></iframe>",
    "<svg onload=\"window.__pwned=5\"><script>window.__pwned=6</script></svg>",
    "<form action=\"http://example.invalid/\"><input name=q></form>",
    "A tracking ![pixel](http://example.invalid/p.png) image",
    "An <a href=\"http://example.invalid/\" onclick=\"window.__pwned=7\">html link</a> and <b>not bold</b>",
    "[good link](https://example.org/page)",
])


def test_hostile_markdown_titles_and_file_names_run_nothing(page: tuple[Any, PageWatch], web: ServerProcess) -> None:
    tab, watch = page
    choose(tab, "scripted")
    tab.set_input_files("#file", [{"name": "<img src=x onerror=window.__pwned=8>.md", "mimeType": "text/markdown",
                                   "buffer": b"harmless"}])
    tab.wait_for_selector("#attachments .chip:has-text('tokens')", timeout=30_000)
    tab.click("#attachments .chip button")  # the chip showed the hostile name as text; drop the file again
    send(tab, HOSTILE)
    wait_answered(tab)
    tab.reload()  # once streamed, and once rendered again from the history
    tab.wait_for_selector("body[data-ready=true]")
    tab.wait_for_selector(DONE)
    assert tab.evaluate("window.__pwned") is None
    messages = tab.locator("#messages")
    for tag in ("script", "img", "iframe", "svg", "form", "input"):
        assert messages.locator(tag).count() == 0, tag
    assert messages.locator("[onclick], [onerror], [onload]").count() == 0
    answer = answers(tab)[0]
    assert "<script>" in answer and "<b>not bold</b>" in answer  # raw HTML is shown as text
    assert "[image: pixel]" in answer
    hrefs = messages.locator(".msg.assistant a").evaluate_all("as => as.map(a => [a.getAttribute('href'), a.rel])")
    assert ["https://example.org/page", "noopener noreferrer"] in hrefs
    assert all(not (h or "").lower().startswith("javascript") for h, _ in hrefs)
    title = tab.locator("#conversations li.current button.conv").inner_text()
    assert title.startswith("ECHO: <script>")  # the title too is text
    assert not watch.violations(), watch.violations()
    assert not watch.foreign_requests(), watch.foreign_requests()


def test_a_2000_token_answer_renders_as_fast_as_it_streams(page: tuple[Any, PageWatch]) -> None:
    tab, _ = page
    choose(tab, "scripted")
    started = time.monotonic()
    send(tab, "LONG 2000")
    wait_answered(tab)
    elapsed = time.monotonic() - started
    lag = float(tab.get_attribute(".msg.assistant:last-child", "data-lag-ms") or "nan")
    print(f"\n2,000-token answer streamed and rendered in {elapsed:.1f} s; display lag at the end {lag:.0f} ms")
    assert lag < 500
    assert tab.locator(".msg.assistant li").count() > 100


SHOWCASE = "Write a Python function that adds two numbers, and explain it briefly."


@pytest.fixture(scope="module")
def showcase(web: ServerProcess) -> str:
    """A conversation with a real answer from the bundled model (code, prose), to look at and scan."""
    body = {"model": "smollm2:135m", "stream": False, "conversation_id": "showcase", "options": {"num_predict": 160},
            "messages": [{"role": "user", "content": SHOWCASE}]}
    assert httpx.post(web.url + "/api/chat", json=body, timeout=180).status_code == 200
    return SHOWCASE[:30]


def open_showcase(tab: Any, title: str) -> None:
    tab.locator(f"#conversations button.conv:has-text('{title}')").first.click()
    tab.wait_for_selector(DONE)


CODE_ANSWER = "ECHO: " + "\n".join([  # every kind of token highlight.js colours, in both themes
    "```python", "# a comment", "import os", "@decorator", "def add(a: int, b=2.5) -> int:",
    '    """Docstring."""', "    print(f'{a} and {b!r}', None, True, len([1, 2]))  # built-ins", "    return a + b",
    "class Box(object):", "    pass", "```", "", "| a | b |", "|---|---|", "| 1 | 2 |", "", "> a quote with `code`"])


def scan(tab: Any) -> list[Any]:
    """axe-core's serious and critical violations on the page as it is."""
    if not tab.evaluate("typeof axe !== 'undefined'"):
        tab.add_script_tag(content=AXE.read_text(encoding="utf-8"))
    result = tab.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [(v["id"], v["impact"], [(n["html"][:120], n["failureSummary"][-160:]) for n in v["nodes"]][:3])
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


def test_no_serious_accessibility_violations(browser: Any, web: ServerProcess, showcase: str) -> None:
    for name, options in (("desktop light", {"viewport": {"width": 1280, "height": 800}, "color_scheme": "light"}),
                          ("desktop dark", {"viewport": {"width": 1280, "height": 800}, "color_scheme": "dark"}),
                          ("phone", {"viewport": {"width": 390, "height": 844}, "is_mobile": True,
                                     "has_touch": True, "reduced_motion": "reduce"})):
        context = browser.new_context(bypass_csp=True, **options)  # only so the test can inject axe-core
        tab = context.new_page()
        tab.goto(web.url + "/")
        tab.wait_for_selector("body[data-ready=true]")
        if name == "phone":
            tab.click("#open-drawer")
        open_showcase(tab, showcase)
        if name == "phone":  # scan the settled page, not a drawer halfway through its slide
            tab.wait_for_function("() => document.getElementById('sidebar').getBoundingClientRect().right <= 1")
        tab.click("#settings-toggle")
        assert not scan(tab), f"{name}: {json.dumps(scan(tab))}"
        if name.startswith("desktop"):  # and an answer with every kind of highlighted code, a table, a quote
            choose(tab, "scripted")
            tab.click("#new-chat")
            send(tab, CODE_ANSWER)
            wait_answered(tab)
            assert tab.locator(".msg.assistant .hljs-built_in").count() > 0
            assert not scan(tab), f"{name}, code: {json.dumps(scan(tab))}"
        context.close()


def test_screenshots_and_the_phone_layout(browser: Any, web: ServerProcess, showcase: str) -> None:
    for scheme in ("light", "dark"):
        context = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme=scheme)
        tab = context.new_page()
        tab.goto(web.url + "/")
        tab.wait_for_selector("body[data-ready=true]")
        open_showcase(tab, showcase)
        screenshot(tab, f"desktop-{scheme}")
        context.close()
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    tab = context.new_page()
    tab.goto(web.url + "/")
    tab.wait_for_selector("body[data-ready=true]")
    sidebar = tab.locator("#sidebar").bounding_box()
    assert sidebar is not None and sidebar["x"] + sidebar["width"] <= 1  # a closed drawer
    composer = tab.locator("#composer").bounding_box()
    assert composer is not None and composer["y"] + composer["height"] <= 844
    tab.tap("#open-drawer")
    tab.wait_for_function("() => document.getElementById('sidebar').getBoundingClientRect().x >= 0")
    screenshot(tab, "phone-drawer")
    tab.tap("#scrim", position={"x": 370, "y": 400})
    tab.wait_for_function("() => document.getElementById('sidebar').getBoundingClientRect().right <= 1")
    tab.tap("#open-drawer")
    open_showcase(tab, showcase)  # choosing a conversation closes the drawer
    tab.wait_for_function("() => document.getElementById('sidebar').getBoundingClientRect().right <= 1")
    screenshot(tab, "phone")
    context.close()


def test_a_conversation_answers_from_a_document_collection_and_shows_its_sources(
        page: tuple[Any, PageWatch], web_home: Path, tmp_path: Path) -> None:
    tab, _ = page
    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "bread.md").write_text("# Bread\n\nKnead the dough for ten minutes, then let it rise for an hour.\n")
    (folder / "soup.txt").write_text("Tomato soup needs basil, garlic and a slow simmer.\n")
    subprocess.run([HEARTH, "docs", "add", "recipes", str(folder)], env=cli_env(web_home), check=True,
                   capture_output=True, timeout=120)
    tab.reload()
    tab.wait_for_selector("body[data-ready=true]")
    choose(tab, "smollm2:135m")
    set_max_tokens(tab, 24)
    tab.select_option("#documents", "recipes")
    send(tab, "How long should bread dough rise?")
    wait_answered(tab)
    sources = tab.locator(".msg.assistant .sources li").all_inner_texts()
    assert sources and sources[0] == "[1] bread.md", sources
    assert "rise for an hour" in (tab.locator(".msg.assistant .sources li").first.get_attribute("title") or "")


def test_a_page_conversation_continues_in_the_terminal(page: tuple[Any, PageWatch], web: ServerProcess,
                                                       web_home: Path) -> None:
    tab, _ = page
    choose(tab, "smollm2:135m")
    set_max_tokens(tab, 8)
    send(tab, "My cat is called Pumpernickel. Say hi.")
    wait_answered(tab)
    cid = current_id(tab)
    child = chat(web_home, "--continue", cid, "-o", "num_predict=8", first=rf"Continuing conversation {cid}")
    child.sendline("What is my cat called?")
    child.expect(">>> ")
    child.sendline("/bye")
    child.expect(pexpect.EOF)
    recorded = conversation(web, cid)["messages"]
    assert [m["role"] for m in recorded] == ["user", "assistant", "user", "assistant"]
    assert recorded[3]["stats"]["prompt_tokens"] > recorded[1]["stats"]["prompt_tokens"]  # it read the page's turn
    tab.click("#conversations li.current button.conv")  # the page shows the terminal's turn too
    tab.wait_for_function("() => document.querySelectorAll('.msg.assistant').length === 2")


def test_thinking_is_shown_collapsed_and_tool_calls_as_cards(page: tuple[Any, PageWatch]) -> None:
    tab, _ = page
    choose(tab, "scripted")
    send(tab, "THINK: weigh the <i>options</i> carefully")
    wait_answered(tab)
    thinking = tab.locator(".msg.assistant details.thinking")
    assert thinking.count() == 1 and thinking.get_attribute("open") is None  # collapsed
    assert thinking.locator("pre").text_content() == "weigh the <i>options</i> carefully"  # as text
    assert answers(tab)[-1] == "I thought about it."
    send(tab, "TOOL: get_weather")
    wait_answered(tab, 2)
    card = tab.locator(".msg.assistant .tool-card").last
    assert "Tool call: get_weather" in card.inner_text() and '"city": "<b>Oslo</b>"' in card.inner_text()
    assert tab.locator(".msg.assistant b").count() == 0


def test_the_models_panel_shows_what_is_loaded_until_when_and_unloads_it(page: tuple[Any, PageWatch],
                                                                          web: ServerProcess) -> None:
    tab, _ = page
    body = {"model": "smollm2:135m", "messages": [], "keep_alive": "10m"}  # load it (Ollama's empty request)
    assert httpx.post(web.url + "/api/chat", json=body, timeout=120).status_code == 200
    tab.click("#models-panel summary")
    row = tab.locator("#loaded li", has_text="smollm2:135m")
    row.wait_for()
    assert "until" in row.inner_text() and "MB" in row.inner_text()
    row.locator("button", has_text="Unload").click()
    assert wait_for(lambda: all(m["name"] != "smollm2:135m" for m in web.ps()), timeout=15)
    tab.wait_for_function("() => !document.getElementById('loaded').textContent.includes('smollm2:135m')")


def test_a_conversation_is_renamed_and_deleted_from_the_sidebar(page: tuple[Any, PageWatch],
                                                               web: ServerProcess) -> None:
    tab, _ = page
    choose(tab, "scripted")
    send(tab, "ECHO: rename me")
    wait_answered(tab)
    cid = current_id(tab)
    item = tab.locator("#conversations li.current")
    item.locator("button[aria-label^='Rename']").click()
    tab.fill("#conversations input.rename", "<img src=x onerror=alert(1)> Renamed")
    tab.keyboard.press("Enter")
    tab.wait_for_selector("#conversations button.conv:has-text('Renamed')")
    assert conversation(web, cid)["title"] == "<img src=x onerror=alert(1)> Renamed"
    assert tab.locator("#conversations img").count() == 0
    tab.once("dialog", lambda dialog: dialog.accept())
    tab.locator("#conversations li", has_text="Renamed").locator("button[aria-label^='Delete']").click()
    tab.wait_for_function("() => !document.getElementById('conversations').textContent.includes('Renamed')")
    assert httpx.get(f"{web.url}/api/conversations/{cid}", timeout=10).status_code == 404
    assert tab.locator(".msg").count() == 0  # the open conversation was the deleted one: a new chat
