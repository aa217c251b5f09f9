"""Continuous batching and the prompt cache, on the real engine and model."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest

from hearth.config import Settings
from hearth.options import parse_options
from hearth.service import Hearth
from hearth.store import ModelStore
from hearth.types import Done, Message, TextChunk
from tests.conftest import private_hearth

GREEDY = {"temperature": 0, "seed": 3, "num_predict": 24}
PROMPTS = ["Name a large animal.", "What is 2 + 2?", "Give me a colour.", "Say something about rain.",
           "Name a programming language."]


@pytest.fixture(scope="module")
def four_slots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hearth]:
    home = tmp_path_factory.mktemp("batch-home")
    os.environ["HEARTH_HOME"] = str(home)
    service = Hearth(Settings(num_parallel=4, num_ctx=1024, max_queue=1), store=ModelStore(home))
    yield service
    service.close()


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hearth, Hearth]]:
    """Two identical services without a prompt cache: one answers alone, the other beside other streams."""
    home = tmp_path_factory.mktemp("twins-home")
    os.environ["HEARTH_HOME"] = str(home)
    pair = tuple(Hearth(Settings(num_parallel=4, num_ctx=1024, prompt_cache_bytes=0), store=ModelStore(home))
                 for _ in range(2))
    yield pair  # type: ignore[misc]
    for service in pair:
        service.close()


@pytest.fixture(scope="module")
def one_slot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hearth]:
    yield from private_hearth(tmp_path_factory, "cache-home", num_parallel=1, num_ctx=2048)


def answer(hearth: Hearth, messages: list[Message], options: dict) -> tuple[str, Done]:
    parts, done = [], None
    for event in hearth.chat("smollm2:135m", messages, parse_options(options)):
        if isinstance(event, TextChunk):
            parts.append(event.text)
        elif isinstance(event, Done):
            done = event
    assert done is not None and done.reason != "error", done
    return "".join(parts), done


def test_four_concurrent_streams_equal_their_solo_outputs_and_a_fifth_waits(four_slots: Hearth) -> None:
    solo = [answer(four_slots, [Message("user", p)], GREEDY)[0] for p in PROMPTS]
    results: dict[int, str] = {}
    started: dict[int, float] = {}
    finished: dict[int, float] = {}

    def worker(i: int) -> None:
        started[i] = time.monotonic()
        results[i] = answer(four_slots, [Message("user", PROMPTS[i])], GREEDY)[0]
        finished[i] = time.monotonic()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert [results[i] for i in range(5)] == solo
    stats = four_slots.scheduler.loaded()[0].client.call("stats")
    assert stats["slots"] == 4 and stats["slots_busy"] == 0 and stats["waiting"] == 0


def test_requests_beyond_slots_and_queue_are_refused_with_busy(four_slots: Hearth) -> None:
    from hearth.errors import BusyError

    long = {"temperature": 0, "num_predict": 300}
    gens = [four_slots.chat("smollm2:135m", [Message("user", "Tell a long story.")], parse_options(long))
            for _ in range(5)]
    try:
        with pytest.raises(BusyError) as err:
            four_slots.chat("smollm2:135m", [Message("user", "one more")], parse_options(long))
        assert err.value.retry_after > 0
    finally:
        for g in gens:
            g.close()  # never started: hand the model back


def test_a_cancelled_stream_frees_its_slot_for_a_waiting_request(four_slots: Hearth) -> None:
    # raw counting completions keep counting until num_predict: the four slots stay busy however fast
    # this machine decodes (a chat answer may end after a few tokens)
    long = {"temperature": 0, "num_predict": 1000, "repeat_penalty": 1.0}
    gens = [four_slots.generate("smollm2:135m", f"{i}, {i + 1}, {i + 2}, {i + 3},", parse_options(long), raw=True)
            for i in range(4)]
    streams = [iter(g) for g in gens]
    try:
        for s in streams:
            next(e for e in s if isinstance(e, TextChunk))
        waiting = four_slots.chat("smollm2:135m", [Message("user", "What is 2 + 2?")], parse_options(GREEDY))
        events: list = []
        done = threading.Event()

        def sink(event: object) -> None:
            events.append(event)
            if isinstance(event, Done):
                done.set()

        waiting.start(sink)
        time.sleep(0.5)
        assert not any(isinstance(e, TextChunk) for e in events)  # all four slots are busy: it waits
        stats = four_slots.scheduler.loaded()[0].client.call("stats")
        assert stats["slots_busy"] == 4 and stats["waiting"] == 1
        streams[0].close()  # type: ignore[attr-defined]
        assert done.wait(60)
        assert isinstance(events[-1], Done) and events[-1].reason == "stop"
    finally:
        for s in streams:
            s.close()  # type: ignore[attr-defined]


def test_switching_between_three_conversations_restores_their_histories(one_slot: Hearth) -> None:
    opts = {"temperature": 0, "num_predict": 16}
    topics = ["the sea", "mountains", "cities"]
    conversations = [[Message("system", f"You talk about {t}."), Message("user", f"Tell me about {t}.")]
                     for t in topics]
    prompt_total = cached_total = 0
    for turn in range(3):
        for conv in conversations:
            text, done = answer(one_slot, conv, opts)
            if turn > 0:
                # everything before this turn's new user message came from the cache
                assert done.stats.cached_tokens >= done.stats.prompt_tokens - 30, done.stats
                prompt_total += done.stats.prompt_tokens
                cached_total += done.stats.cached_tokens
            conv += [Message("assistant", text), Message("user", "Tell me more.")]
    assert cached_total > 0.7 * prompt_total  # short turns: the new message is a large share here
    stats = one_slot.scheduler.loaded()[0].client.call("stats")
    assert stats["cache_restores"] >= 6 and stats["cache_bytes"] > 0


def _notes(topic: str, n: int) -> str:
    return (f"Here are some notes about {topic}. "
            + " ".join(f"Note {i}: {topic} matter to many people in many ways." for i in range(n))
            + f" Summarise the notes about {topic} in one sentence.")


def test_a_long_prompt_arriving_beside_three_streams_answers_as_it_would_alone(twins: tuple[Hearth, Hearth]) -> None:
    # prompts longer than the chunk cap (a quarter batch) are evaluated in chunks while the others stream;
    # "mountains" answered differently when a chunk shared a llama_decode with the generating tokens
    alone, beside = twins
    prompts = [_notes(topic, n) for topic, n in
               [("the sea", 12), ("mountains", 15), ("bread", 20), ("trains", 25), ("winter", 30), ("bees", 14)]]
    solo = [answer(alone, [Message("user", p)], {"temperature": 0, "num_predict": 24})[0] for p in prompts]
    filler = {"temperature": 0, "num_predict": 400, "repeat_penalty": 1.0}
    for k, prompt in enumerate(prompts):
        gens = [beside.generate("smollm2:135m", f"{k}{i}, {k}{i + 1}, {k}{i + 2},", parse_options(filler), raw=True)
                for i in range(3)]
        streams = [iter(g) for g in gens]
        try:
            for s in streams:
                next(e for e in s if isinstance(e, TextChunk))
            text, done = answer(beside, [Message("user", prompt)], {"temperature": 0, "num_predict": 24})
        finally:
            for s in streams:
                s.close()  # type: ignore[attr-defined]
        assert done.stats.prompt_tokens > 128  # longer than one chunk
        assert text == solo[k], prompt


def test_the_same_request_twice_answers_the_same_although_the_second_comes_from_the_cache(one_slot: Hearth) -> None:
    # with these prompts the answer changed when the cache left a single prompt token to evaluate
    for prompt in ["Say hello in three words.", "Why is the sky blue?", "Name a large animal."]:
        first, _ = answer(one_slot, [Message("user", prompt)], {**GREEDY, "num_predict": 16})
        again, done = answer(one_slot, [Message("user", prompt)], {**GREEDY, "num_predict": 16})
        assert done.stats.cached_tokens >= done.stats.prompt_tokens - 2
        assert again == first
