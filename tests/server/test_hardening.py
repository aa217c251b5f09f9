"""Hostile requests against a live server on the bundled model: refused with 400, the worker and server stay up."""

from __future__ import annotations

import httpx

from tests.server.conftest import MODEL, ServerProcess

CHAT = [{"role": "user", "content": "Say yes."}]


def _chat(live: ServerProcess, **options: object) -> httpx.Response:
    return httpx.post(live.url + "/api/chat", json={"model": MODEL, "messages": CHAT, "stream": False,
                                                    "options": {"num_predict": 4, **options}}, timeout=120)


def test_grammars_llama_cpp_cannot_take_are_400s_and_the_worker_lives(live: ServerProcess) -> None:
    assert _chat(live).status_code == 200
    deep = "root ::= " + "(" * 30000 + '"a"' + ")" * 30000
    marker = "zq-grammar-marker"
    for grammar, words in ((deep, "deep"), ("x" * (300 << 10), "longer"),
                           (f'root ::= root "a" | "{marker}"', "could not be parsed"),
                           (f'root ::= undefined-{marker}', "could not be parsed"),
                           (f'root ::= "{marker}', "could not be parsed")):
        response = _chat(live, grammar=grammar)
        assert response.status_code == 400, (grammar[:60], response.text)
        assert words in response.json()["error"] and response.json().get("field") == "grammar"
    ok = _chat(live, grammar='root ::= "yes" | "no"')
    assert ok.status_code == 200 and ok.json()["message"]["content"] in ("yes", "no")
    assert _chat(live).status_code == 200  # the same worker still answers
    assert marker not in live.log.read_text(errors="replace")  # no grammar text in the server's output


def test_a_grammar_nested_within_the_limit_still_works(live: ServerProcess) -> None:
    grammar = "root ::= " + "(" * 90 + '"ok"' + ")" * 90
    response = _chat(live, grammar=grammar)
    assert response.status_code == 200 and response.json()["message"]["content"] == "ok"
