"""Fixtures for the hub tests: the fake hub (hub + CDN on two local ports) used through HF_ENDPOINT."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import gguf
import numpy as np
import pytest

from hearth.store import bundled
from tests.hub.fakehub import TOKEN, FakeHub

REPO = "TestOwner/SmolLM2-135M-Instruct-GGUF"
FILE = "SmolLM2-135M-Instruct-Q4_1.gguf"
SPLIT_REPO = "TestOwner/SmolLM2-Split-GGUF"
SPLIT_FILES = [f"Q4_1/SmolLM2-135M-Instruct-Q4_1-{k:05d}-of-00003.gguf" for k in (1, 2, 3)]


@pytest.fixture
def fake_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, home: Path) -> Iterator[FakeHub]:
    """A running fake hub, with HF_ENDPOINT and HF_TOKEN pointing at it, its CDN allowed (and a private HF_HOME)."""
    hub = FakeHub().start()
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HEARTH_DOWNLOAD_HOSTS", hub.cdn_url)  # its CDN is plain http on loopback: named exactly
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    yield hub
    hub.stop()


@pytest.fixture
def smol_repo(fake_hub: FakeHub, bundled_model: Path, tmp_path: Path) -> FakeHub:
    """The bundled SmolLM2 served as REPO/FILE, next to a tiny Q8_0 file in the same repository."""
    tiny = write_tiny(tmp_path / "SmolLM2-135M-Instruct-Q8_0.gguf")
    fake_hub.add_repo(REPO, {FILE: bundled_model, "SmolLM2-135M-Instruct-Q8_0.gguf": tiny},
                      extra_files={"README.md": b"# SmolLM2\n"})
    return fake_hub


@pytest.fixture(scope="session")
def smol_split_parts(tmp_path_factory: pytest.TempPathFactory, bundled_model: Path) -> list[Path]:
    """The bundled model in three gguf-split parts (100, 100 and 72 tensors)."""
    from tests.store.split_samples import write_split

    return write_split(bundled_model, tmp_path_factory.mktemp("hub-split"), "SmolLM2-135M-Instruct-Q4_1", 100)


@pytest.fixture
def split_repo(fake_hub: FakeHub, smol_split_parts: list[Path], tmp_path: Path) -> FakeHub:
    """SPLIT_REPO: the split bundled model (Q4_1, in a folder) beside a tiny single-file Q8_0."""
    tiny = write_tiny(tmp_path / "SmolLM2-135M-Instruct-Q8_0.gguf")
    files = dict(zip(SPLIT_FILES, smol_split_parts, strict=True))
    fake_hub.add_repo(SPLIT_REPO, {**files, "SmolLM2-135M-Instruct-Q8_0.gguf": tiny})
    return fake_hub


@pytest.fixture
def no_bundled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the built-in model out of the store (its registration hashes 98 MB)."""
    monkeypatch.setattr(bundled, "locate", lambda: None)


def write_tiny(path: Path, file_type: gguf.LlamaFileType = gguf.LlamaFileType.MOSTLY_Q8_0) -> Path:
    """A small well-formed GGUF (not loadable by llama.cpp: for listings, sizes and hashes)."""
    from tests.store.store_samples import write_tiny_model

    return write_tiny_model(path, file_type=file_type)


def write_sparse_model(path: Path, *, n_vocab: int = 32000, n_layer: int = 16, n_embd: int = 2048,
                       n_ff: int = 8192) -> Path:
    """A llama-shaped GGUF with a real-sized vocabulary and ~1.2 GB of (sparse, all-zero) f16 weights.

    Only the header is written; the tensor data is a hole, so the file costs no disk but is as large as a
    small real model. Good for checking that reading its header stays under 1% of it.
    """
    writer = gguf.GGUFWriter(str(path), arch="llama")
    writer.add_name("Sparse Test Llama")
    writer.add_context_length(4096)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_embd // 64)
    writer.add_head_count_kv(8)
    writer.add_vocab_size(n_vocab)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_tokenizer_model("llama")
    writer.add_token_list([f"<token number {i}>" for i in range(n_vocab)])
    writer.add_token_scores([0.0] * n_vocab)
    writer.add_token_types([1] * n_vocab)
    shapes = [("token_embd.weight", (n_vocab, n_embd))]
    for layer in range(n_layer):
        shapes += [(f"blk.{layer}.ffn_up.weight", (n_ff, n_embd)), (f"blk.{layer}.ffn_down.weight", (n_embd, n_ff))]
    total = 0
    for name, shape in shapes:
        nbytes = shape[0] * shape[1] * 2
        writer.add_tensor_info(name, shape, np.dtype(np.float16), nbytes)
        total += -(-nbytes // 32) * 32
    writer.write_header_to_file(path)
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    start = -(-path.stat().st_size // 32) * 32
    with open(path, "r+b") as handle:
        handle.truncate(start + total)
    return path
