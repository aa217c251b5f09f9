"""Hostile chat templates render under a budget: bounded memory, bounded time, a typed error every time."""

from __future__ import annotations

import time
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hearth.chat.template import MAX_SECONDS, ChatTemplate
from hearth.errors import TemplateError
from hearth.types import Message

CHAT = [Message("user" if i % 2 == 0 else "assistant", f"Hello {i}") for i in range(201)]
PEAK_LIMIT = 64 << 20  # the whole render, Python allocations included, stays under 64 MB

HOSTILE = {
    "doubling": "{% set s = namespace(v='xxxxxxxx') %}{% for i in range(40) %}{% set s.v = s.v ~ s.v %}{% endfor %}"
                "{{ s.v }}",
    "doubling with +": "{% set s = namespace(v='xxxxxxxx') %}{% for i in range(40) %}{% set s.v = s.v + s.v %}"
                       "{% endfor %}{{ s.v }}",
    "replace growth": "{% set s = namespace(v='x') %}{% for i in range(40) %}{% set s.v = s.v|replace('x', 'xx') %}"
                      "{% endfor %}{{ s.v }}",
    "format width": "{{ '%200000000s'|format('') }}",
    "percent width": "{{ '%200000000s' % 'a' }}",
    "str.format width": "{{ '{:200000000}'.format('a') }}",
    "center": "{{ 'a'|center(200000000) }}",
    "ljust": "{{ 'a'.ljust(200000000) }}",
    "indent": "{{ 'a\nb'|indent(200000000) }}",
    "tojson indent": "{{ messages|tojson(indent=100000000) }}",
    "constant tojson": "{{ [[[[1]]]]|tojson(indent=100000000) }}",
    "nested loops": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "loop over messages": "{% for m in messages %}{% for n in messages %}{% for o in messages %}{% endfor %}"
                          "{% endfor %}{% endfor %}",
    "repeat": "{{ 'x' * 1000000000 }}",
    "list repeat": "{{ ([1] * 50000) * 50000 }}",
    "recursion": "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    "output flood": "{% for i in range(100000) %}{{ 'y' * 99999 }}{% endfor %}",
    "power": "{{ 10 ** 100000000 }}",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_template_is_a_template_error_within_the_budget(name: str) -> None:
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(TemplateError):
            ChatTemplate(HOSTILE[name]).render(CHAT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < PEAK_LIMIT, f"{name}: {peak >> 20} MB"
    assert time.monotonic() - started < MAX_SECONDS * 3


def test_a_real_template_still_renders_a_long_chat() -> None:
    chatml = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] "
              "+ '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
    chat = [Message("user" if i % 2 == 0 else "assistant", f"message {i} " * 20) for i in range(2001)]
    text = ChatTemplate(chatml).render(chat)
    assert text.count("<|im_start|>") == 2002 and text.endswith("<|im_start|>assistant\n")
    assert ChatTemplate("{{ messages|tojson(indent=2) }}").render(CHAT).startswith("[\n  {")
    assert ChatTemplate("{{ '%5s|%-3d'|format('a', 1) }}{{ 'x'|center(5) }}").render(CHAT) == "    a|1    x  "


def test_trial_refuses_a_template_that_fails_on_an_ordinary_chat() -> None:
    with pytest.raises(TemplateError):
        ChatTemplate("{{ messages[0]['content'] + 1 }}").trial()
    ChatTemplate("{% if messages[0]['role'] == 'system' %}{{ raise_exception('no system') }}{% endif %}ok").trial()


PIECES = st.sampled_from([
    "{% for i in range(N) %}", "{% endfor %}", "{{ 'ab' * N }}", "{{ 'x'|center(N) }}", "{{ '%Ns'|format('') }}",
    "{% set s = namespace(v='xy') %}", "{% set s.v = s.v ~ s.v %}", "{{ s.v|replace('x', 'xxx') }}",
    "{{ messages|tojson(indent=N) }}", "{{ 'q'.rjust(N) }}", "{{ N ** N }}", "{{ [N] * N }}",
    "{% for m in messages %}{{ m.content * N }}{% endfor %}",
])


@settings(max_examples=120, deadline=None)
@given(pieces=st.lists(st.tuples(PIECES, st.integers(0, 10**9)), min_size=1, max_size=8))
def test_generated_templates_stay_within_memory_and_time(pieces: list[tuple[str, int]]) -> None:
    source = "".join(p.replace("N", str(n)) for p, n in pieces)
    opened = source.count("{% for") - source.count("{% endfor")
    source += "{% endfor %}" * max(0, opened)
    tracemalloc.start()
    started = time.monotonic()
    try:
        try:
            ChatTemplate(source).render(CHAT)
        except TemplateError:
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < PEAK_LIMIT, (source, peak >> 20)
    assert time.monotonic() - started < MAX_SECONDS * 3, source
