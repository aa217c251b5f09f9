"""Model names and digests: Ollama-like names accepted, everything path-shaped or odd refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hearth.errors import InvalidNameError
from hearth.store import ModelName, ModelStore, parse_digest, parse_name
from hearth.store.names import inside

HEX = "ab" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("smollm2", "smollm2:latest"),
        ("smollm2:135m", "smollm2:135m"),
        ("SmolLM2:135M", "smollm2:135m"),
        ("user/model", "user/model:latest"),
        ("hf.co/owner/repo:Q4_K_M", "hf.co/owner/repo:q4_k_m"),
        ("llama3.2:3b-instruct-q4_0", "llama3.2:3b-instruct-q4_0"),
        ("a" * 80 + ":" + "b" * 80, "a" * 80 + ":" + "b" * 80),
    ],
)
def test_valid_names(text: str, expected: str) -> None:
    assert str(parse_name(text)) == expected


def test_model_name_parts() -> None:
    name = parse_name("hf.co/owner/repo:q8_0")
    assert (name.name, name.tag, name.components) == ("hf.co/owner/repo", "q8_0", ("hf.co", "owner", "repo"))
    assert parse_name(name) is name
    assert ModelName("x") == parse_name("x")


HOSTILE = [
    "", " ", "../x", "..", ".", "/etc/passwd", "a/../../b", "a/./b", "x\x00y", "a\\b", "..\\..\\x",
    "con:tag:extra", "a" * 300, "a" * 81, "x:" + "t" * 81, "has space", "tab\there", "new\nline",
    "trailing/", "/leading", "a//b", "a/b/c/d", "x:", ":tag", "-dash", "_under", ".hidden", "x:-tag",
    "x:.tag", "ｍodel", "modеl", "mod\u200bel", "\u212aelvin", "caf\u00e9", "a:b/c", "x.json:t",
    "a/b.json", "del\x7f", "ok:ta g", "semi;colon", "star*", "q?", "per%cent", "~home",
]


@pytest.mark.parametrize("text", HOSTILE, ids=[repr(t)[:30] for t in HOSTILE])
def test_hostile_names_are_refused(text: str) -> None:
    with pytest.raises(InvalidNameError) as caught:
        parse_name(text)
    assert caught.value.hint and "mymodel" in caught.value.hint
    assert caught.value.message


@pytest.mark.parametrize(
    ("text", "words"),
    [("", "empty"), ("a" * 300, "300 characters"), ("a/../b", "'..'"), ("x\x00y", "control"),
     ("a\\b", "backslash"), ("/etc/passwd", "absolute"), ("a:b:c", "more than one ':'"),
     ("has space", "whitespace"), ("modеl", "non-ASCII"), ("a/b/c/d", "at most 3")],
)
def test_messages_name_the_problem(text: str, words: str) -> None:
    with pytest.raises(InvalidNameError, match=words):
        parse_name(text)


def test_non_text_is_refused() -> None:
    with pytest.raises(InvalidNameError):
        parse_name(42)  # type: ignore[arg-type]


def test_digests() -> None:
    assert parse_digest(f"sha256:{HEX}") == f"sha256:{HEX}"
    assert parse_digest(f"sha256-{HEX.upper()}") == f"sha256:{HEX}"
    for bad in ["", "sha256:", f"sha256:{HEX}0", f"sha256:{HEX[:-1]}g", f"md5:{HEX}", f"sha256/{HEX}",
                f"sha256:{HEX}\n", f"../sha256:{HEX}"]:
        with pytest.raises(InvalidNameError):
            parse_digest(bad)


def test_inside_refuses_escapes(tmp_path: Path) -> None:
    assert inside(tmp_path, "a", "b.json") == tmp_path.resolve() / "a" / "b.json"
    for parts in (("..", "x"), ("/etc/passwd",), ()):
        with pytest.raises(InvalidNameError):
            inside(tmp_path, *parts)


def test_inside_refuses_symlinks_out_of_the_store(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / "evil").symlink_to(outside)
    with pytest.raises(InvalidNameError):
        inside(root, "evil", "latest.json")


NAMEISH = st.text(alphabet="abcZ09._-/:\\ \x00\n.é", max_size=40)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(NAMEISH, st.text(max_size=250)))
def test_any_accepted_name_stays_inside_the_store(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    root = tmp_path_factory.getbasetemp() / "fuzz-home"
    store = ModelStore(root)
    try:
        name = parse_name(text)
    except InvalidNameError:
        return
    path = store._manifest_path(name)
    assert path.resolve().is_relative_to((root / "manifests").resolve())
    assert str(parse_name(str(name))) == str(name)
    assert len(str(name)) <= 200
