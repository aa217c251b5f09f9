"""The Modelfile syntax: every instruction, the quoting forms, and line-numbered errors."""

from __future__ import annotations

import pytest

from hearth.errors import InvalidRequestError
from hearth.modelfile import ModelfileError, parse_modelfile
from hearth.types import Message

EVERYTHING = '''# A persona
FROM smollm2:135m
system You are a pirate.
PARAMETER temperature 0.3
PARAMETER num_predict 64
PARAMETER stop "<|im_end|>"
PARAMETER stop ###
TEMPLATE """{{ range .Messages }}<|{{ .Role }}|>
{{ .Content }}
{{ end }}<|assistant|>
"""
MESSAGE user Who are you?
MESSAGE assistant """Captain Hearth,
at your service."""
ADAPTER ./lora.gguf
LICENSE """MIT License

Copyright"""
LICENSE Apache-2.0
'''


def test_every_instruction_is_read_with_its_line() -> None:
    parsed = parse_modelfile(EVERYTHING)
    assert (parsed.base.text, parsed.base.line) == ("smollm2:135m", 2)
    assert parsed.system is not None and parsed.system.text == "You are a pirate."
    assert parsed.parameters == {"temperature": 0.3, "num_predict": 64, "stop": ["<|im_end|>", "###"]}
    assert parsed.parameter_lines == {"temperature": 4, "num_predict": 5, "stop": 6}
    assert parsed.template is not None and parsed.template.line == 8
    assert parsed.template.text == "{{ range .Messages }}<|{{ .Role }}|>\n{{ .Content }}\n{{ end }}<|assistant|>\n"
    assert parsed.messages == [Message("user", "Who are you?"),
                               Message("assistant", "Captain Hearth,\nat your service.")]
    assert [(a.text, a.line) for a in parsed.adapters] == [("./lora.gguf", 15)]
    assert parsed.licenses == ["MIT License\n\nCopyright", "Apache-2.0"]
    assert parsed.warnings == []


def test_windows_line_endings_a_bom_and_an_empty_system_are_fine() -> None:
    parsed = parse_modelfile('\ufeffFROM base\r\nSYSTEM ""\r\nPARAMETER seed 7\r\n')
    assert parsed.base.text == "base" and parsed.system is not None and parsed.system.text == ""
    assert parsed.parameters == {"seed": 7}


def test_parameters_that_mean_nothing_here_are_warnings_not_errors() -> None:
    parsed = parse_modelfile("FROM base\nPARAMETER num_gpu 99\nPARAMETER mirostat 2\nREQUIRES 0.6.0\n")
    assert parsed.parameters == {}
    assert len(parsed.warnings) == 3 and "line 2" in parsed.warnings[0]


@pytest.mark.parametrize(("text", "line", "words"), [
    ("SYSTEM hi\n", 1, "no FROM"),
    ("FROM a\n\nFORM b\n", 3, "unknown instruction 'FORM'"),
    ("FROM a\nFROM b\n", 2, "second FROM (the first is on line 1)"),
    ("FROM a\n# ok\nPARAMETER temperature hot\n", 3, "temperature"),
    ("FROM a\nPARAMETER temprature 0.5\n", 2, "unknown PARAMETER 'temprature'"),
    ("FROM a\nPARAMETER top_p 7\n", 2, "top_p"),
    ("FROM a\nMESSAGE robot hello\n", 2, "MESSAGE role 'robot'"),
    ("FROM a\nSYSTEM \"\"\"never\nclosed\n", 2, "never closed"),
    ("FROM a\nSYSTEM \"\"\"x\"\"\" trailing\n", 2, "after the closing quote"),
    ("FROM\n", 1, "FROM needs a value"),
    ("FROM a\nPARAMETER\n", 2, "PARAMETER needs an option name"),
    ("FROM a\nDRAFT b\n", 2, "DRAFT is not supported"),
    ("FROM a\n123 go\n", 2, "is not an instruction"),
    ("FROM a\nFROM: b\n", 2, "is not an instruction"),
])
def test_mistakes_name_the_right_line(text: str, line: int, words: str) -> None:
    with pytest.raises(ModelfileError) as caught:
        parse_modelfile(text)
    assert caught.value.line == line
    assert str(caught.value).startswith(f"Modelfile line {line}: ")
    assert words in str(caught.value)
    assert isinstance(caught.value, InvalidRequestError)  # so the server answers 400


def test_a_misspelt_instruction_gets_a_suggestion() -> None:
    with pytest.raises(ModelfileError) as caught:
        parse_modelfile("FROM a\nSYTEM hi\n")
    assert caught.value.hint is not None and "did you mean SYSTEM?" in caught.value.hint
