"""Chat templates render in a sandbox; hostile templates fail cleanly; history is trimmed by policy."""

from __future__ import annotations

import time

import pytest

from hearth.chat import ChatTemplate, fit_messages
from hearth.errors import ContextOverflowError, TemplateError
from hearth.store.gguf import read_gguf_info
from hearth.types import Message


def test_the_bundled_models_own_template_renders(bundled_model) -> None:
    template = ChatTemplate(read_gguf_info(bundled_model).chat_template)
    text = template.render([Message("user", "Hi")])
    assert text.startswith("<|im_start|>system\n")  # SmolLM2 adds its default system prompt
    assert text.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")


def test_no_template_falls_back_to_chatml() -> None:
    template = ChatTemplate(None)
    assert template.is_fallback
    assert template.render([Message("user", "Hi")]) == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"


@pytest.mark.parametrize("source", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ messages.__class__.__init__.__globals__ }}",
    "{% set x = messages.append(1) %}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ 'x' * 1000000000 }}",
    "{{ [1] * 1000000000 }}",
    "{{ 10 ** 100000000 }}",
    "{{ raise_exception('no system role') }}",
    "{% for m in messages %}{{ m.content.nope.deeper() }}{% endfor %}",
    "{{ 1 / 0 }}",
    "{% if %}",
])
def test_hostile_or_broken_templates_raise_template_error_quickly(source: str) -> None:
    started = time.monotonic()
    with pytest.raises(TemplateError):
        ChatTemplate(source).render([Message("user", "Hi")])
    assert time.monotonic() - started < 1.0


def _count(messages: list[Message]) -> list[int]:
    return [0] * sum(len(m.content.split()) + 2 for m in messages)


def test_trimming_keeps_the_system_prompt_and_the_latest_turns() -> None:
    history = [Message("system", "be brief")]
    for i in range(10):
        history += [Message("user", f"question {i} " + "pad " * 20), Message("assistant", f"answer {i}")]
    history.append(Message("user", "last question"))
    fitted = fit_messages(history, _count, n_ctx=120, reserve=20)
    assert fitted.messages[0] == history[0]
    assert fitted.messages[-1] == history[-1]
    assert fitted.messages[1].role == "user"  # never starts with an orphaned answer
    assert fitted.dropped > 0
    assert len(_count(fitted.messages)) <= 100


def test_when_even_the_last_message_cannot_fit_it_is_refused() -> None:
    with pytest.raises(ContextOverflowError):
        fit_messages([Message("system", "s"), Message("user", "word " * 500)], _count, n_ctx=100, reserve=10)


def test_trimming_a_long_chat_renders_it_a_logarithmic_number_of_times() -> None:
    calls = 0

    def counting(messages: list[Message]) -> list[int]:
        nonlocal calls
        calls += 1
        return _count(messages)

    history = [Message("system", "be brief")]
    for i in range(400):
        history += [Message("user", f"question {i} " + "pad " * 20), Message("assistant", f"answer {i}")]
    history.append(Message("user", "last question"))
    fitted = fit_messages(history, counting, n_ctx=400, reserve=50)
    assert calls <= 12  # 801 messages: one render per dropped message would be hundreds
    assert len(_count(fitted.messages)) <= 350 and fitted.messages[1].role == "user"
    start = history.index(fitted.messages[1])
    assert history[start - 2].role == "user"
    assert len(_count([history[0], *history[start - 2:]])) > 350  # keeping one more turn would not fit
    assert fitted.dropped == len(history) - len(fitted.messages)
