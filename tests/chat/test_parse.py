"""The streaming output parser splits recorded outputs of each format exactly, whatever the chunking.

The fixtures follow each format's documentation: Hermes/Qwen (`<tool_call>` JSON, Qwen2.5/Qwen3 model
cards and NousResearch's Hermes function-calling format), Mistral (`[TOOL_CALLS]` JSON list, and the
v11+ `[TOOL_CALLS]name[ARGS]{...}`), Llama 3.1/3.2 (`<|python_tag|>` and bare JSON with "parameters"),
and DeepSeek-R1/Qwen3 thinking in `<think>` tags.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hearth.chat.parse import OutputParser, detect_format
from hearth.types import TextChunk, ThinkingChunk, ToolCallEvent

WEATHER = {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}

CASES = [
    # (format, tools, in_thinking, output, expected content, expected thinking, expected calls)
    ("hermes", True, False,
     'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}\n'
     "</tool_call>", "Let me check.\n", "", [WEATHER]),
    ("hermes", True, False,
     '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}\n</tool_call>\n'
     '<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>', "\n", "",
     [WEATHER, {"name": "get_time", "arguments": {}}]),
    ("hermes", True, False,
     "<think>\nThe user wants weather. I should call the tool.\n</think>\n\n"
     '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}\n</tool_call>',
     "", "\nThe user wants weather. I should call the tool.\n", [WEATHER]),
    ("mistral", True, False,
     '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}]', "", "", [WEATHER]),
    ("mistral", True, False,
     '[TOOL_CALLS]get_weather[ARGS]{"city": "Paris", "unit": "celsius"}', "", "", [WEATHER]),
    ("llama3", True, False,
     '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris", "unit": "celsius"}}', "", "", [WEATHER]),
    ("llama3", True, False,
     '{"name": "get_weather", "parameters": {"city": "Paris", "unit": "celsius"}}', "", "", [WEATHER]),
    ("llama3", True, False, '{"not": "a call"}', '{"not": "a call"}', "", []),
    ("hermes", False, False, "<think>Two plus two is four.</think>\n\nThe answer is 4.", "The answer is 4.",
     "Two plus two is four.", []),
    ("hermes", False, True, "Okay, the user greets me.\n</think>\n\nHello!", "Hello!",
     "Okay, the user greets me.\n", []),
    ("hermes", False, False, "A < sign and <b>tags</b>.", "A < sign and <b>tags</b>.", "", []),
    ("hermes", False, False, "Tools are off so <tool_call> stays text.", "Tools are off so <tool_call> stays text.",
     "", []),
    ("hermes", True, False, "<tool_call>{not json}</tool_call>", "{not json}", "", []),
]


def split(parser: OutputParser, chunks: list[str]) -> tuple[str, str, list[dict]]:
    events = []
    for chunk in chunks:
        events += parser.feed(chunk)
    events += parser.finish()
    content = "".join(e.text for e in events if isinstance(e, TextChunk))
    thinking = "".join(e.text for e in events if isinstance(e, ThinkingChunk))
    calls = [{"name": e.call.name, "arguments": e.call.arguments} for e in events if isinstance(e, ToolCallEvent)]
    assert all(e.call.id.startswith("call_") for e in events if isinstance(e, ToolCallEvent))
    return content, thinking, calls


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_recorded_outputs_split_exactly_at_any_chunk_size(case: tuple, size: int) -> None:
    fmt, tools, in_thinking, output, content, thinking, calls = case
    parser = OutputParser(fmt, tools=tools, in_thinking=in_thinking)
    chunks = [output[i:i + size] for i in range(0, len(output), size)]
    assert split(parser, chunks) == (content, thinking, calls)


@settings(max_examples=200)
@given(st.lists(st.integers(min_value=1, max_value=12), min_size=1, max_size=40), st.sampled_from(CASES))
def test_random_chunkings_never_change_the_result(cuts: list[int], case: tuple) -> None:
    fmt, tools, in_thinking, output, content, thinking, calls = case
    chunks, i = [], 0
    for cut in cuts:
        chunks.append(output[i:i + cut])
        i += cut
    chunks.append(output[i:])
    assert split(OutputParser(fmt, tools=tools, in_thinking=in_thinking), chunks) == (content, thinking, calls)


def test_markup_never_reaches_content() -> None:
    output = 'Sure.<tool_call>{"name": "f", "arguments": {"x": 1}}</tool_call> Done.'
    content, _, calls = split(OutputParser("hermes", tools=True), list(output))
    assert "<tool_call>" not in content and "</tool_call>" not in content
    assert calls == [{"name": "f", "arguments": {"x": 1}}]


def test_format_detection_from_templates() -> None:
    assert detect_format("{% if tools %}<tool_call>{% endif %}") == "hermes"
    assert detect_format("[AVAILABLE_TOOLS]...[TOOL_CALLS]") == "mistral"
    assert detect_format("<|start_header_id|>ipython<|end_header_id|>") == "llama3"
    assert detect_format(None) == "hermes"
