"""`/metrics`, `/api/ps` and `hearth ps` show slots in use, prompt-cache hits and cached tokens."""

from __future__ import annotations

import subprocess

import httpx

from tests.conftest import HEARTH, cli_env
from tests.server.conftest import MODEL, ServerProcess


def _metric(text: str, name: str) -> float:
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line.startswith(name + "{") and f'model="{MODEL}"' in line]
    assert values, f"{name} missing from /metrics"
    return values[0]


def test_cache_hits_and_slots_are_visible(live: ServerProcess, server_home) -> None:
    messages = [{"role": "user", "content": "Name three rivers in Europe."}]
    first = httpx.post(live.url + "/v1/chat/completions", timeout=120,
                       json={"model": MODEL, "messages": messages, "max_tokens": 16, "temperature": 0}).json()
    messages += [first["choices"][0]["message"], {"role": "user", "content": "And two in Asia?"}]
    second = httpx.post(live.url + "/v1/chat/completions", timeout=120,
                        json={"model": MODEL, "messages": messages, "max_tokens": 16, "temperature": 0}).json()
    assert second["usage"]["prompt_tokens_details"]["cached_tokens"] >= first["usage"]["prompt_tokens"] - 1
    metrics = httpx.get(live.url + "/metrics", timeout=10).text
    assert _metric(metrics, "hearth_model_cached_tokens") >= second["usage"]["prompt_tokens_details"]["cached_tokens"]
    assert _metric(metrics, "hearth_model_cache_hits") >= 1
    assert _metric(metrics, "hearth_model_slots") == 4
    assert _metric(metrics, "hearth_model_slots_busy") == 0
    entry = next(m for m in httpx.get(live.url + "/api/ps", timeout=10).json()["models"] if m["name"] == MODEL)
    assert entry["slots"] == 4 and entry["slots_busy"] == 0 and entry["cached_tokens"] > 0
    # `auto` drafts from the context only with flash attention on (docs/speculative.md)
    drafts = entry["engine"]["flash_attention"] != "off"
    assert entry["speculative"] == ("ngram" if drafts else "off") and entry["draft_tokens"] is not None
    env = {**cli_env(server_home), "HEARTH_HOST": f"127.0.0.1:{live.port}"}
    table = subprocess.run([HEARTH, "ps"], capture_output=True, text=True, env=env, timeout=30, check=True).stdout
    assert "SLOTS" in table and "0/4" in table


def test_tags_carry_a_fit_label(live: ServerProcess) -> None:
    models = httpx.get(live.url + "/api/tags", timeout=30).json()["models"]
    smol = next(m for m in models if m["name"] == MODEL)
    assert smol["fit"] == "fits"
