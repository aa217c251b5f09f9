"""The official `openai` and `ollama` Python clients against a live `hearth serve` on the bundled model."""

from __future__ import annotations

import json

import ollama
import openai
import pytest

from tests.server.conftest import MODEL, ServerProcess

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer", "minimum": 0,
                                                                        "maximum": 150}},
    "required": ["name", "age"],
}
HI = [{"role": "user", "content": "Say hello in three words."}]


@pytest.fixture(scope="module")
def oa(live: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=live.url + "/v1", api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def ol(live: ServerProcess) -> ollama.Client:
    return ollama.Client(host=live.url, timeout=120)


def _valid_person(text: str) -> None:
    person = json.loads(text)
    assert set(person) == {"name", "age"}
    assert isinstance(person["name"], str) and len(person["name"]) <= 20
    assert isinstance(person["age"], int) and 0 <= person["age"] <= 150


# -- openai -----------------------------------------------------------------------------------------------
def test_openai_lists_models(oa: openai.OpenAI) -> None:
    assert MODEL in [m.id for m in oa.models.list()]
    assert oa.models.retrieve(MODEL).id == MODEL


def test_openai_chat_whole_and_streamed_agree(oa: openai.OpenAI) -> None:
    whole = oa.chat.completions.create(model=MODEL, messages=HI, max_tokens=16, temperature=0, seed=1)
    text = whole.choices[0].message.content
    assert text and whole.choices[0].finish_reason in ("stop", "length")
    assert whole.usage is not None and whole.usage.completion_tokens <= 16 and whole.usage.prompt_tokens > 0
    stream = oa.chat.completions.create(model=MODEL, messages=HI, max_tokens=16, temperature=0, seed=1, stream=True,
                                        stream_options={"include_usage": True})
    chunks = list(stream)
    usage = [c.usage for c in chunks if c.usage]
    assert len(usage) == 1 and usage[0].completion_tokens == whole.usage.completion_tokens
    assert chunks[-1].choices == []
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == whole.choices[0].finish_reason


def test_openai_stop_and_max_completion_tokens(oa: openai.OpenAI) -> None:
    reply = oa.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Count: 1, 2, 3, 4, 5, 6"}],
                                       max_completion_tokens=5, temperature=0)
    assert reply.usage.completion_tokens <= 5 and reply.choices[0].finish_reason == "length"
    counted = oa.completions.create(model=MODEL, prompt="1, 2, 3, 4, 5,", max_tokens=24, temperature=0, stop=[" 8"])
    assert " 8" not in counted.choices[0].text


def test_openai_completion(oa: openai.OpenAI) -> None:
    reply = oa.completions.create(model=MODEL, prompt="The capital of France is", max_tokens=6, temperature=0)
    assert reply.choices[0].text.strip()
    assert reply.usage.prompt_tokens == 5
    streamed = oa.completions.create(model=MODEL, prompt="The capital of France is", max_tokens=6, temperature=0,
                                     stream=True)
    assert "".join(c.choices[0].text for c in streamed) == reply.choices[0].text


def test_openai_embeddings(oa: openai.OpenAI) -> None:
    result = oa.embeddings.create(model=MODEL, input=["hello", "a longer sentence about cats"])  # base64 by default
    assert len(result.data) == 2 and len(result.data[0].embedding) == 576
    assert sum(x * x for x in result.data[1].embedding) == pytest.approx(1.0, abs=1e-4)
    floats = oa.embeddings.create(model=MODEL, input="hello", encoding_format="float")
    assert floats.data[0].embedding == pytest.approx(result.data[0].embedding, abs=1e-5)
    assert result.usage.prompt_tokens > 2


def test_openai_json_schema_output_parses_and_validates(oa: openai.OpenAI) -> None:
    reply = oa.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Describe a person as JSON."}], max_tokens=60, temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}})
    _valid_person(reply.choices[0].message.content)
    obj = oa.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "List two fruits as JSON."}],
                                     max_tokens=60, temperature=0, response_format={"type": "json_object"})
    if obj.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(obj.choices[0].message.content), dict)
    else:
        assert obj.choices[0].message.content.lstrip().startswith("{")


def test_openai_errors(oa: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match="/v1/models"):
        oa.chat.completions.create(model="no-such-model", messages=HI)
    with pytest.raises(openai.BadRequestError, match="temperature"):
        oa.chat.completions.create(model=MODEL, messages=HI, temperature=-1)


def test_openai_context_overflow_is_400_streamed_or_not(oa: openai.OpenAI) -> None:
    long = [{"role": "user", "content": "word " * 3000}]
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError, match="context") as caught:
            oa.chat.completions.create(model=MODEL, messages=long, max_tokens=4, stream=stream)
        assert caught.value.code == "exceed_context_size_error"
    with pytest.raises(openai.BadRequestError, match="context"):
        oa.completions.create(model=MODEL, prompt="word " * 3000, max_tokens=4)


# -- ollama -----------------------------------------------------------------------------------------------
def test_ollama_lists_shows_and_reports_version(ol: ollama.Client) -> None:
    models = ol.list().models
    assert MODEL in [m.model for m in models]
    entry = next(m for m in models if m.model == MODEL)
    assert entry.size > 90_000_000 and len(entry.digest) == 64 and entry.details.quantization_level == "Q4_1"
    shown = ol.show(MODEL)
    assert shown.details.family == "llama" and shown.modelinfo["general.architecture"] == "llama"
    assert shown.template


def test_ollama_chat_whole_and_streamed_agree(ol: ollama.Client) -> None:
    options = {"temperature": 0, "num_predict": 16, "seed": 3}
    whole = ol.chat(model=MODEL, messages=HI, options=options)
    assert whole.done and whole.done_reason in ("stop", "length")
    assert whole.eval_count <= 16 and whole.prompt_eval_count > 0 and whole.total_duration >= whole.eval_duration > 0
    parts = list(ol.chat(model=MODEL, messages=HI, options=options, stream=True))
    assert parts[-1].done and not any(p.done for p in parts[:-1])
    assert "".join(p.message.content for p in parts) == whole.message.content
    assert parts[-1].eval_count == whole.eval_count


def test_ollama_generate_raw_system_and_keep_alive(ol: ollama.Client, live: ServerProcess) -> None:
    reply = ol.generate(model=MODEL, prompt="The capital of France is", raw=True, keep_alive="10m",
                        options={"temperature": 0, "num_predict": 6})
    assert reply.response.strip() and reply.prompt_eval_count == 5
    system = ol.generate(model=MODEL, prompt="hi", system="You are a pirate.", options={"num_predict": 4})
    assert system.prompt_eval_count > reply.prompt_eval_count
    assert next(m for m in live.ps() if m["name"] == MODEL)["keep_alive"] in (300.0, 600.0)


def test_ollama_format_schema_and_json(ol: ollama.Client) -> None:
    reply = ol.generate(model=MODEL, prompt="Describe a person as JSON.", format=PERSON,
                        options={"temperature": 0, "num_predict": 60})
    _valid_person(reply.response)
    chat = ol.chat(model=MODEL, messages=[{"role": "user", "content": "Describe a person as JSON."}], format=PERSON,
                   options={"temperature": 0, "num_predict": 60})
    _valid_person(chat.message.content)


def test_ollama_embed(ol: ollama.Client) -> None:
    result = ol.embed(model=MODEL, input=["hello", "world"])
    assert len(result.embeddings) == 2 and len(result.embeddings[0]) == 576
    assert sum(x * x for x in result.embeddings[0]) == pytest.approx(1.0, abs=1e-4)
    assert len(ol.embeddings(model=MODEL, prompt="hello").embedding) == 576


def test_ollama_errors_copy_delete(ol: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as missing:
        ol.chat(model="no-such-model", messages=HI)
    assert missing.value.status_code == 404 and "/api/tags" in str(missing.value)
    with pytest.raises(ollama.ResponseError) as bad:
        ol.generate(model=MODEL, prompt="hi", options={"top_k": -3})
    assert bad.value.status_code == 400 and "top_k" in str(bad.value)
    with pytest.raises(ollama.ResponseError) as overflow:
        ol.generate(model=MODEL, prompt="word " * 3000, options={"num_predict": 2})
    assert overflow.value.status_code == 400 and "context" in str(overflow.value)
    ol.copy(MODEL, "copy-of-smol:1")
    assert "copy-of-smol:1" in [m.model for m in ol.list().models]
    ol.delete("copy-of-smol:1")
    assert "copy-of-smol:1" not in [m.model for m in ol.list().models]
    with pytest.raises(ollama.ResponseError) as gone:
        ol.delete("copy-of-smol:1")
    assert gone.value.status_code == 404


def test_ollama_ps_reports_the_worker(ol: ollama.Client, live: ServerProcess) -> None:
    ol.generate(model=MODEL, prompt="hi", options={"num_predict": 1})
    loaded = ol.ps().models
    entry = next(m for m in loaded if m.model == MODEL)
    assert entry.size > 50_000_000 and entry.expires_at is not None and entry.context_length == 1024
    raw = next(m for m in live.ps() if m["name"] == MODEL)
    assert raw["pid"] > 0 and raw["slots"] == 4
