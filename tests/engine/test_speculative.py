"""Speculative decoding on the real engine and model: the same answers, with drafts verified and rolled back.

Both services run flash attention, where a token verified in a multi-token step gets the logits a one-token
step gives it; conversations stay under 256 KV cells (llama.cpp decodes a lone token against 512 or more
cells with a split-KV kernel that rounds differently: docs/speculative.md).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest

from hearth.cli.serve import speculation_line
from hearth.config import Settings
from hearth.engine.grammar import schema_grammar
from hearth.engine.speculative import Acceptance, NgramIndex, StepCosts, plan
from hearth.errors import DraftModelError
from hearth.options import parse_options
from hearth.server.ollama import ps_entry
from hearth.service import Hearth
from hearth.store import ModelStore
from hearth.types import Done, Message, TextChunk
from tests.engine.draft_samples import write_foreign_vocab_model

GREEDY = {"temperature": 0, "num_predict": 80}
COPY = [
    "Repeat this list exactly: apple, banana, cherry, date, elderberry, fig, grape, honeydew, kiwi, lemon, mango.",
    "Rewrite this code with the function renamed to total:\n\ndef add(a, b):\n    return a + b\n\n"
    "print(add(1, 2))\nprint(add(3, 4))",
    "Quote this passage word for word: 'The lighthouse stood on the rocks for a hundred years, and every night "
    "its keeper climbed the stairs to light the lamp.'",
]
FREE = ["Write a short poem about the sea.", "What is the capital of France?", "Give me three tips for sleeping well."]
SCHEMA = {"type": "object", "properties": {"fruits": {"type": "array", "items": {"type": "string"}},
                                           "count": {"type": "integer"}}, "required": ["fruits", "count"]}


def _service(home: str, **settings: object) -> Hearth:
    base = {"num_parallel": 4, "num_ctx": 1024, "flash_attention": "on", "prompt_cache_bytes": 0}
    return Hearth(Settings(**{**base, **settings}), store=ModelStore(home))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hearth, Hearth]]:
    """The same service without and with n-gram speculation."""
    home = tmp_path_factory.mktemp("spec-home")
    os.environ["HEARTH_HOME"] = str(home)
    plain, spec = _service(str(home), speculative="off"), _service(str(home), speculative="ngram", draft_max=8)
    yield plain, spec
    plain.close()
    spec.close()


def answer(hearth: Hearth, prompt: str, options: dict) -> tuple[str, Done]:
    parts, done = [], None
    for event in hearth.chat("smollm2:135m", [Message("user", prompt)], parse_options(options)):
        if isinstance(event, TextChunk):
            parts.append(event.text)
        elif isinstance(event, Done):
            done = event
    assert done is not None and done.reason != "error", done
    return "".join(parts), done


def test_greedy_answers_are_identical_with_and_without_speculation(pair: tuple[Hearth, Hearth]) -> None:
    plain, spec = pair
    drafted = accepted = 0
    for prompt in COPY + FREE:
        reference, ref_done = answer(plain, prompt, GREEDY)
        text, done = answer(spec, prompt, GREEDY)
        why = f"{prompt!r}: drafted {done.stats.draft_tokens}, accepted {done.stats.accepted_tokens}"
        assert text == reference, why
        assert done.stats.completion_tokens == ref_done.stats.completion_tokens, why
        assert ref_done.stats.draft_tokens == 0
        drafted += done.stats.draft_tokens
        accepted += done.stats.accepted_tokens
    # the copy-heavy prompts really were drafted (how much depends on the step timings the worker measures:
    # on a loaded machine the fit may say drafting does not pay after the first steps)
    assert 5 <= accepted <= drafted, f"drafted {drafted}, accepted {accepted}"


def test_seeded_sampling_gives_the_same_answer_too(pair: tuple[Hearth, Hearth]) -> None:
    plain, spec = pair
    options = {"temperature": 0.7, "seed": 11, "num_predict": 60}
    for prompt in COPY[:2]:
        assert answer(spec, prompt, options)[0] == answer(plain, prompt, options)[0]


def test_beside_other_streams_the_answers_equal_the_solo_ones(pair: tuple[Hearth, Hearth]) -> None:
    plain, spec = pair
    prompts = [COPY[0], FREE[0], COPY[2], FREE[2]]
    solo = [answer(plain, p, GREEDY)[0] for p in prompts]
    results: dict[int, str] = {}

    def run(i: int) -> None:
        results[i] = answer(spec, prompts[i], GREEDY)[0]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert [results.get(i) for i in range(len(prompts))] == solo


def test_a_json_schema_grammar_holds_with_drafts(pair: tuple[Hearth, Hearth]) -> None:
    plain, spec = pair
    options = {**GREEDY, "grammar": schema_grammar(SCHEMA)}
    prompt = "List these fruits as JSON with their count: apple, banana, cherry, apple, banana, cherry."
    text, done = answer(spec, prompt, options)
    assert text == answer(plain, prompt, options)[0]
    assert text.lstrip().startswith("{") and '"fruits"' in text


def test_a_stop_string_inside_a_drafted_run_ends_the_answer_at_the_same_place(pair: tuple[Hearth, Hearth]) -> None:
    plain, spec = pair
    options = {**GREEDY, "stop": ["honeydew"]}
    text, done = answer(spec, COPY[0], options)
    reference, _ = answer(plain, COPY[0], options)
    assert text == reference and "honeydew" not in text and done.reason == "stop"
    options = {**GREEDY, "num_predict": 17}  # a length limit reached in the middle of a draft
    text, done = answer(spec, COPY[1], options)
    assert text == answer(plain, COPY[1], options)[0] and done.stats.completion_tokens == 17


def test_a_cancelled_stream_with_drafts_in_flight_frees_its_slot(pair: tuple[Hearth, Hearth]) -> None:
    _, spec = pair
    prompt = "Repeat the word 'hello' two hundred times, separated by spaces."
    generation = spec.chat("smollm2:135m", [Message("user", prompt)], parse_options({**GREEDY, "num_predict": 400}))
    events = iter(generation)
    chunks = 0
    for event in events:
        chunks += isinstance(event, TextChunk)
        if chunks == 30:
            break
    events.close()  # type: ignore[attr-defined]
    loaded = generation.source.loaded
    stats = loaded.client.call("stats")
    assert stats["draft_tokens"] > 0 and stats["accepted_tokens"] > 0
    assert loaded.in_flight == 0 and stats["slots_busy"] == 0 and stats["waiting"] == 0
    text, _ = answer(spec, COPY[0], GREEDY)  # the slot's KV cache was left consistent
    assert "banana" in text


def test_the_bundled_model_as_its_own_draft_model_accepts_nearly_every_draft(
        tmp_path_factory: pytest.TempPathFactory, pair: tuple[Hearth, Hearth]) -> None:
    plain, _ = pair
    home = tmp_path_factory.mktemp("draft-home")
    os.environ["HEARTH_HOME"] = str(home)
    service = _service(str(home), num_parallel=1, speculative="draft", draft_model="smollm2:135m", draft_max=4)
    try:
        drafted = accepted = 0
        options = {**GREEDY, "repeat_penalty": 1.0}  # the draft model drafts by argmax, without penalties
        for prompt in (FREE[0], COPY[1]):
            text, done = answer(service, prompt, options)
            assert text == answer(plain, prompt, options)[0]
            drafted += done.stats.draft_tokens
            accepted += done.stats.accepted_tokens
        assert drafted >= 40 and accepted >= 0.9 * drafted
        # `/api/ps` (and so `hearth ps`) says how the model drafts and how well
        [running] = service.ps()
        entry = ps_entry(running)
        assert entry["speculative"] == "draft"
        assert (entry["draft_tokens"], entry["accepted_tokens"]) == (drafted, accepted)
        assert speculation_line(entry) == f"; speculative draft ({accepted} of {drafted} drafted tokens accepted)"
    finally:
        service.close()


def test_a_draft_model_with_another_vocabulary_is_refused(tmp_path_factory: pytest.TempPathFactory) -> None:
    home = tmp_path_factory.mktemp("foreign-home")
    os.environ["HEARTH_HOME"] = str(home)
    ModelStore(home).import_file(write_foreign_vocab_model(home / "foreign.gguf"), "foreign:tiny")
    service = _service(str(home), num_parallel=1, speculative="draft", draft_model="foreign:tiny")
    try:
        with pytest.raises(DraftModelError, match="cannot draft for this model"):
            answer(service, FREE[1], GREEDY)
    finally:
        service.close()


# -- the pieces, without the engine -------------------------------------------------------------------------
def test_ngram_lookup_proposes_what_followed_the_last_occurrence() -> None:
    index = NgramIndex()
    index.sync([1, 2, 3, 4, 5, 9, 1, 2, 3])
    assert index.propose(3) == [4, 5, 9]
    index.sync([1, 2, 3, 4, 5, 9, 1, 2, 3, 7])
    assert index.propose(3) == []
    index.sync([1, 2, 3, 4, 5, 9, 1, 2, 3, 7, 8, 2, 3])
    assert index.propose(3) == []  # a 2-token match proposes nothing


def test_drafting_backs_off_when_drafts_fail_and_tries_again_later() -> None:
    acceptance = Acceptance()
    k, chosen = plan([(8, acceptance.rate)], 1, 8, 1.0)
    assert k >= 1 and chosen == [0]
    for _ in range(10):
        acceptance.observe(4, 0)
    assert plan([(8, acceptance.rate)], 1, 8, 1.0) == (0, [])
    for _ in range(200):
        acceptance.idle()
    assert plan([(8, acceptance.rate)], 1, 8, 1.0)[0] >= 1
    for _ in range(30):
        acceptance.observe(8, 8)
    assert plan([(16, acceptance.rate)], 1, 16, 1.0)[0] >= 8  # long drafts once they keep being accepted


def test_the_step_cost_fit_recovers_the_weights_to_token_ratio() -> None:
    costs = StepCosts()
    assert costs.ratio() == 1.0
    for passes, tokens in [(1, 1), (1, 4), (2, 9), (1, 2), (1, 8), (2, 5), (1, 1), (1, 16)] * 2:
        costs.add(passes, tokens, 0.006 * passes + 0.002 * tokens)
    assert costs.ratio() == pytest.approx(3.0, rel=1e-6)


def test_a_modelfile_names_its_draft_model_and_requests_never_see_it() -> None:
    from hearth.modelfile.parser import parse_modelfile
    from hearth.options import request_parameters

    parsed = parse_modelfile("FROM smollm2:135m\nPARAMETER draft_model smollm2:135m\nPARAMETER temperature 0.2\n")
    assert parsed.parameters["draft_model"] == "smollm2:135m"
    assert request_parameters(parsed.parameters) == {"temperature": 0.2}
    parse_options(request_parameters(parsed.parameters))  # would raise on an unknown option


def test_auto_speculates_only_with_flash_attention_and_draft_needs_a_model(tmp_path: object) -> None:
    from hearth.errors import InvalidOptionError
    from hearth.service.speculation import speculation_fields
    from hearth.service.tuning import EngineSettings
    from hearth.store import Manifest

    manifest = Manifest.__new__(Manifest)
    object.__setattr__(manifest, "parameters", {})
    on, off = (EngineSettings(fa, 2, 2, 512, ()) for fa in ("on", "off"))
    store = ModelStore(str(tmp_path))
    assert speculation_fields(Settings(), manifest, on, store)["speculative"] == "ngram"
    assert speculation_fields(Settings(), manifest, off, store)["speculative"] == "off"
    assert speculation_fields(Settings(speculative="ngram"), manifest, off, store)["speculative"] == "ngram"
    with pytest.raises(InvalidOptionError, match="needs a draft model"):
        speculation_fields(Settings(speculative="draft"), manifest, on, store)
