"""Incremental UTF-8 decoding and stop-sequence matching on split input."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hearth.engine.text import StopMatcher, Utf8Stream


def test_multibyte_characters_split_across_tokens_come_out_whole() -> None:
    data = "héllo 🌍 日本".encode()
    stream = Utf8Stream()
    pieces = [stream.feed(data[i:i + 1]) for i in range(len(data))]
    assert all("\ufffd" not in p for p in pieces)
    assert "".join(pieces) + stream.flush() == "héllo 🌍 日本"


def test_an_incomplete_character_at_the_end_becomes_a_replacement_character() -> None:
    stream = Utf8Stream()
    assert stream.feed("é".encode()[:1]) == ""
    assert stream.flush() == "\ufffd"


@given(st.text(max_size=60), st.lists(st.integers(min_value=1, max_value=7), max_size=30))
def test_any_split_decodes_to_the_original(text: str, cuts: list[int]) -> None:
    data, out, i, stream = text.encode(), [], 0, Utf8Stream()
    for cut in cuts:
        out.append(stream.feed(data[i:i + cut]))
        i += cut
    out.append(stream.feed(data[i:]))
    assert "".join(out) + stream.flush() == text


def test_stop_sequence_split_across_chunks_is_never_emitted() -> None:
    matcher = StopMatcher(["<END>"])
    out = []
    stopped = False
    for chunk in ["Hello <", "E", "N", "D> tail"]:
        text, stopped = matcher.feed(chunk)
        out.append(text)
        if stopped:
            break
    assert stopped
    assert "".join(out) == "Hello "


def test_text_that_only_looks_like_a_stop_start_is_released() -> None:
    matcher = StopMatcher(["<END>"])
    a, _ = matcher.feed("a <E")
    b, stopped = matcher.feed("X")
    assert not stopped
    assert a + b + matcher.flush() == "a <EX"


def test_earliest_of_several_stops_wins() -> None:
    text, stopped = StopMatcher(["world", "lo"]).feed("hello world")
    assert stopped and text == "hel"


@given(st.text(alphabet="ab<>ENDx ", max_size=40), st.lists(st.integers(1, 5), max_size=20))
def test_stop_matching_equals_find_on_the_whole_text(text: str, cuts: list[int]) -> None:
    matcher, out, i, stopped = StopMatcher(["<END>", "ab"]), [], 0, False
    for cut in [*cuts, len(text)]:
        piece, stopped = matcher.feed(text[i:i + cut])
        out.append(piece)
        i += cut
        if stopped:
            break
    if not stopped:
        out.append(matcher.flush())
    positions = [p for p in (text.find("<END>"), text.find("ab")) if p != -1]
    expected = text[: min(positions)] if positions else text
    assert "".join(out) == expected
