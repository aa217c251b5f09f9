"""What may be pulled: references, file names from listings, quantization names, and the catalog file."""

from __future__ import annotations

import pytest

from hearth.errors import InvalidNameError
from hearth.fit.quants import bits_per_weight, default_quant, quant_of
from hearth.hub import entries, is_hub_reference, lookup, parse_hub_reference
from hearth.hub.refs import check_filename, check_repo_id
from hearth.store import parse_name


@pytest.mark.parametrize(("text", "repo", "quant", "local"), [
    ("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF", "bartowski/Llama-3.2-1B-Instruct-GGUF", None,
     "hf.co/bartowski/llama-3.2-1b-instruct-gguf:latest"),
    ("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M", "bartowski/Llama-3.2-1B-Instruct-GGUF", "Q4_K_M",
     "hf.co/bartowski/llama-3.2-1b-instruct-gguf:q4_k_m"),
    ("https://huggingface.co/Qwen/Qwen3-8B-GGUF/", "Qwen/Qwen3-8B-GGUF", None, "hf.co/qwen/qwen3-8b-gguf:latest"),
    ("huggingface.co/unsloth/Qwen3-8B-GGUF:UD-Q4_K_XL", "unsloth/Qwen3-8B-GGUF", "UD-Q4_K_XL",
     "hf.co/unsloth/qwen3-8b-gguf:ud-q4_k_xl"),
])
def test_hub_references_keep_the_repository_spelling(text: str, repo: str, quant: str | None, local: str) -> None:
    assert is_hub_reference(text)
    ref = parse_hub_reference(text)
    assert (ref.repo_id, ref.quant, str(ref.local_name)) == (repo, quant, local)


@pytest.mark.parametrize("text", [
    "hf.co/owner", "hf.co/owner/repo/extra", "hf.co/../etc", "hf.co/owner/..", "hf.co/own er/repo",
    "hf.co/owner/repo:Q4 K", "hf.co/owner/repo:../x", "hf.co//repo", "hf.co/owner/repo%2f..",
])
def test_malformed_hub_references_are_refused_with_a_hint(text: str) -> None:
    with pytest.raises(InvalidNameError) as caught:
        parse_hub_reference(text)
    assert caught.value.hint


@pytest.mark.parametrize("name", ["../../etc/passwd.gguf", "/abs.gguf", "a/../b.gguf", "a\\b.gguf", "x\x00.gguf",
                                  "", "a//b.gguf", "a/./b.gguf"])
def test_file_names_from_a_listing_cannot_leave_the_repository(name: str) -> None:
    with pytest.raises(InvalidNameError):
        check_filename(name)


def test_ordinary_file_names_pass() -> None:
    assert check_filename("Q4_K_M/Model-Q4_K_M-00001-of-00002.gguf")
    assert check_repo_id("lmstudio-community/gemma-3-1b-it-GGUF")


@pytest.mark.parametrize(("filename", "quant"), [
    ("Llama-3.2-1B-Instruct-Q4_K_M.gguf", "Q4_K_M"), ("qwen2.5-0.5b-instruct-q4_k_m.gguf", "Q4_K_M"),
    ("Qwen3-8B-UD-Q4_K_XL.gguf", "Q4_K_XL"), ("tinyllama-1.1b-chat-v1.0.Q5_K_S.gguf", "Q5_K_S"),
    ("gemma-3-1b-it-BF16.gguf", "BF16"), ("model-f16.gguf", "F16"), ("Phi-4-IQ4_XS.gguf", "IQ4_XS"),
    ("m-IQ3_XXS.gguf", "IQ3_XXS"), ("Q8_0/model-Q8_0-00001-of-00003.gguf", "Q8_0"), ("Qwen2-7B.gguf", None),
    ("model-q4_0.gguf", "Q4_0"),
])
def test_quantizations_are_read_from_file_names(filename: str, quant: str | None) -> None:
    assert quant_of(filename) == quant


def test_the_default_quantization_prefers_q4_k_m_then_the_nearest() -> None:
    assert default_quant(["Q8_0", "Q4_K_M", "Q2_K", "F16"]) == "Q4_K_M"
    assert default_quant(["Q8_0", "Q6_K", "Q3_K_S"]) == "Q6_K"
    assert default_quant(["F16", "Q2_K"]) == "Q2_K"
    assert default_quant([]) is None


def test_the_catalog_is_well_formed() -> None:
    catalog = entries()
    assert 25 <= len(catalog) <= 60
    names = [e.name for e in catalog]
    assert len(set(names)) == len(names)
    latest = {}
    for entry in catalog:
        assert str(parse_name(entry.name)) == entry.name
        assert bits_per_weight(entry.quant) is not None, entry.name
        embedder = entry.family in ("bert", "nomic-bert")  # embedding models for `hearth docs`: small, short windows
        assert entry.description and entry.license and (1e7 if embedder else 1e8) < entry.parameters < 2e10
        assert entry.context_length >= (512 if embedder else 2048)
        assert set(entry.arch) >= {"layers", "kv_heads", "head_dim", "embedding", "feed_forward", "vocab"}
        if entry.latest:
            base = parse_name(entry.name).name
            assert base not in latest, f"two 'latest' entries for {base}"
            latest[base] = entry.name
    sizes = sorted(e.parameters for e in catalog)
    assert sizes[0] < 1e9 and sizes[-1] > 1.2e10  # from half a billion to fourteen billion


def test_the_catalog_names_no_files_sizes_or_hashes() -> None:
    import json
    from importlib import resources

    data = json.loads(resources.files("hearth").joinpath("data/catalog.json").read_text())
    allowed = {"name", "repo", "quant", "parameters", "context_length", "license", "family", "latest",
               "description", "arch"}
    for model in data["models"]:
        assert set(model) <= allowed
        assert ".gguf" not in json.dumps(model) and not any(len(str(v)) == 64 for v in model.values())


@pytest.mark.parametrize(("text", "name", "quant", "local"), [
    ("llama3.2:1b", "llama3.2:1b", "Q4_K_M", "llama3.2:1b"),
    ("LLAMA3.2:1B", "llama3.2:1b", "Q4_K_M", "llama3.2:1b"),
    ("llama3.2", "llama3.2:3b", "Q4_K_M", "llama3.2:latest"),
    ("llama3.2:1b-q8_0", "llama3.2:1b", "Q8_0", "llama3.2:1b-q8_0"),
    ("qwen2.5:0.5b", "qwen2.5:0.5b", "Q4_K_M", "qwen2.5:0.5b"),
])
def test_catalog_lookups(text: str, name: str, quant: str, local: str) -> None:
    match = lookup(text)
    assert match is not None
    assert (match.entry.name, match.quant, str(match.local_name)) == (name, quant, local)


@pytest.mark.parametrize("text", ["nosuchmodel", "llama3.2:70b", "llama3.2:1b-q9_9", "hf.co/a/b", "../x"])
def test_unknown_catalog_names(text: str) -> None:
    assert lookup(text) is None
