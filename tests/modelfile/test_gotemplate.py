"""Ollama's Go chat templates, translated to Jinja, render what Ollama renders.

Expected outputs follow Ollama's `template.Execute`: `.Messages` templates run once; per-turn templates run
for each exchange with the last cut after `{{ .Response }}` (which is appended when missing).
"""

from __future__ import annotations

import pytest

from hearth.chat import ChatTemplate
from hearth.modelfile import GoTemplateError, go_to_jinja, is_go_template
from hearth.types import Message

CHAT = [Message("user", "Hello friend!"), Message("assistant", "Hello human!"), Message("user", "Your name?")]
WITH_SYSTEM = [Message("system", "Be kind."), *CHAT]


def render(go: str, messages: list[Message]) -> str:
    return ChatTemplate(go_to_jinja(go)).render(messages)


PER_TURN = "[INST] {{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }}[/INST] "
MESSAGES = ('[INST] {{ if .System }}{{ .System }}\n\n{{ end }}\n{{- range .Messages }}\n'
            '{{- if eq .Role "user" }}{{ .Content }}[/INST] {{ else if eq .Role "assistant" }}{{ .Content }}[INST] '
            '{{ end }}\n{{- end }}')


@pytest.mark.parametrize("template", [PER_TURN, PER_TURN + "{{ .Response }}", MESSAGES],
                         ids=["per-turn", "per-turn with response", "messages"])
def test_the_three_styles_of_one_format_agree_with_ollama(template: str) -> None:
    assert render(template, CHAT) == "[INST] Hello friend![/INST] Hello human![INST] Your name?[/INST] "
    assert render(template, WITH_SYSTEM) == (
        "[INST] Be kind.\n\nHello friend![/INST] Hello human![INST] Your name?[/INST] ")


def test_a_per_turn_template_stops_where_the_answer_begins() -> None:
    chatml = ("{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}{{ if .Prompt }}"
              "<|im_start|>user\n{{ .Prompt }}<|im_end|>\n{{ end }}<|im_start|>assistant\n{{ .Response }}<|im_end|>\n")
    expected = ("<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nHello friend!<|im_end|>\n"
                "<|im_start|>assistant\nHello human!<|im_end|>\n<|im_start|>user\nYour name?<|im_end|>\n"
                "<|im_start|>assistant\n")
    assert render(chatml, WITH_SYSTEM) == expected
    ranged = ("\n{{- range $index, $_ := .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
              "<|im_start|>assistant\n")
    assert render(ranged, WITH_SYSTEM) == expected


def test_a_last_assistant_message_is_continued() -> None:
    partial = [*CHAT, Message("assistant", "My name is")]
    assert render("[INST] {{ .Prompt }}[/INST] {{ .Response }}</s>", partial) == (
        "[INST] Hello friend![/INST] Hello human!</s>[INST] Your name?[/INST] My name is")


def test_consecutive_messages_of_one_role_are_joined_in_per_turn_templates() -> None:
    doubled = [Message("user", "One."), Message("user", "Two.")]
    assert render("Q: {{ .Prompt }} A: ", doubled) == "Q: One.\n\nTwo. A: "


def test_variables_functions_and_the_last_message() -> None:
    template = ('{{- range $i, $m := .Messages }}{{- $last := eq (len (slice $.Messages $i)) 1 }}'
                '{{ if and $.System (eq $i 0) }}[{{ $.System }}]{{ end }}'
                '<{{ $m.Role }}>{{ .Content }}{{ if $last }} (last){{ end }}\n{{ end }}'
                '{{ printf "%s/%d" "n" (len .Messages) }}')
    assert render(template, WITH_SYSTEM) == (
        "[Be kind.]<system>Be kind.\n<user>Hello friend!\n<assistant>Hello human!\n<user>Your name? (last)\nn/4")


def test_variables_keep_their_value_across_loop_iterations() -> None:
    template = ('{{- $system := "" }}{{- range .Messages }}{{- if eq .Role "system" }}{{ $system = .Content }}'
                '{{- else if eq .Role "user" }}{{ if $system }}{{ $system }} | {{ $system = "" }}{{ end }}'
                "U:{{ .Content }}\n{{ else }}A:{{ .Content }}\n{{ end }}{{- end }}A:")
    assert render(template, WITH_SYSTEM) == "Be kind. | U:Hello friend!\nA:Hello human!\nU:Your name?\nA:"


def test_with_else_comments_and_trimming() -> None:
    template = ("{{/* a comment */}}{{ with .System }}S={{ . }}{{ else }}no system{{ end }}  \n"
                "  {{- range .Messages -}}\n  .{{- end }}")
    assert render(template, WITH_SYSTEM) == "S=Be kind....."
    assert render(template, CHAT) == "no system..."


def test_text_that_looks_like_jinja_stays_text() -> None:
    template = '{{ range .Messages }}{% raw %} {{ "}}" }} \\ {{ .Content }}{{ end }}'
    assert render(template, [Message("user", "x")]) == '{% raw %} }} \\ x'


@pytest.mark.parametrize(("template", "line", "words"), [
    ("{{ .Prompt", 1, "unclosed action"),
    ("line one\n{{ if .System }}x", 2, "with no {{ end }}"),
    ("a\nb\n{{ end }}", 3, "without an {{ if }}"),
    ('{{ define "x" }}{{ end }}', 1, "not supported"),
    ("{{ .Prompt | printf }}", 1, "pipelines"),
    ("\n\n{{ .Sytem }}", 3, "unknown field .Sytem"),
    ("{{ frobnicate .Prompt }}", 1, "'frobnicate' is not supported"),
    ("{{ eq .Prompt }}", 1, "wrong number of arguments"),
    ("{{ $a%}RAW{%set_y = .Prompt }}", 1, "only $variables"),  # no Jinja can be smuggled in as a name
    ("x\n{{ $a.b := .Prompt }}", 2, "only $variables"),
])
def test_unsupported_or_broken_templates_name_their_line(template: str, line: int, words: str) -> None:
    with pytest.raises(GoTemplateError) as caught:
        go_to_jinja(template)
    assert caught.value.line == line and words in str(caught.value)


def test_go_and_jinja_templates_are_told_apart() -> None:
    assert is_go_template(PER_TURN) and is_go_template(MESSAGES)
    assert is_go_template("{{- range $i, $m := .Messages }}{{ end }}")
    assert not is_go_template("{% for m in messages %}{{ m.content }}{% endfor %}")
    assert not is_go_template("{{ bos_token }}{{ messages[0].content }}")
