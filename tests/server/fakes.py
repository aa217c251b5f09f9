"""A fake `Hearth` service for driving the HTTP layer in-process without a model (the layers above the engine).

It speaks the same interface the server uses: `store` (list/get/remove/copy), `scheduler` (loaded/stop/memory),
`chat`/`generate` returning generations with `start(sink)`/`cancel()`/`close()`, `embed` and `load`. A generation
emits its words from a thread, like the worker-reader thread does.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from hearth.config import Settings
from hearth.errors import ConflictError, NotFoundError
from hearth.options import parse_options
from hearth.service import Embeddings
from hearth.store import GGUFInfo, Manifest, Provenance, parse_name
from hearth.types import Done, Event, Message, Stats, TextChunk

WORDS = ["Hello", " from", " the", " fake", " model", "."]


def manifest(name: str) -> Manifest:
    """A plausible manifest for a model that does not exist on disk."""
    info = GGUFInfo(architecture="llama", name="fake", parameter_count=134_520_000, quantization="Q4_1",
                    context_length=2048, embedding_length=8, block_count=2, head_count=2, head_count_kv=2,
                    chat_template=None, bos_token_id=1, eos_token_id=2, tokenizer_model="gpt2", license="mit",
                    file_size=1000, tensor_count=3, gguf_version=3)
    return Manifest(name=name, digest="sha256:" + "ab" * 32, size=1000, info=info,
                    provenance=Provenance(source="test"), parameters={"temperature": 0.2})


class FakeStore:
    """Models by canonical name."""

    def __init__(self) -> None:
        self.models = {"fake:latest": manifest("fake:latest")}

    def list(self) -> list[Manifest]:
        return sorted(self.models.values(), key=lambda m: m.name)

    def get(self, name: str) -> Manifest:
        key = str(parse_name(name))
        if key not in self.models:
            raise NotFoundError(f"model {key!r} not found", hint="hearth list")
        return self.models[key]

    def remove(self, name: str) -> Manifest:
        return self.models.pop(self.get(name).name)

    def copy(self, source: str, target: str) -> Manifest:
        self.get(source)
        key = str(parse_name(target))
        if key in self.models:
            raise ConflictError(f"model {key!r} already exists")
        self.models[key] = manifest(key)
        return self.models[key]


@dataclass
class FakeClient:
    alive: bool = True
    pid: int = 4242
    info: dict[str, Any] = field(default_factory=lambda: {"n_seq": 2, "n_ctx": 2048})

    def call(self, method: str, *args: Any, timeout: float = 600.0) -> Any:
        """The worker's statistics, as a real worker reports them."""
        assert method == "stats"
        return {"slots": 2, "slots_busy": 0, "cache_hits": 0, "cached_tokens": 0, "cache_bytes": 0}


@dataclass
class FakeLoaded:
    manifest: Manifest
    client: FakeClient = field(default_factory=FakeClient)
    n_ctx: int = 2048
    estimate_bytes: int = 10_000
    keep_alive: float = 300.0
    in_flight: int = 0
    expires_at: float | None = None

    @property
    def name(self) -> str:
        return self.manifest.name


class FakeScheduler:
    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self.models: dict[str, FakeLoaded] = {}

    def loaded(self) -> list[FakeLoaded]:
        return list(self.models.values())

    def stop(self, name: str) -> bool:
        return self.models.pop(self.store.get(name).name, None) is not None

    def memory(self, loaded: FakeLoaded) -> int:
        return 12345


class FakeGeneration:
    """Emits WORDS (or `num_predict` of them) from a thread, then Done."""

    def __init__(self, service: FakeHearth, loaded: FakeLoaded, n: int, delay: float) -> None:
        self.service = service
        self.loaded = loaded
        self.n = n
        self.delay = delay
        self.cancelled = threading.Event()
        self.closed = False

    @property
    def model(self) -> str:
        return self.loaded.name

    def start(self, sink: Any) -> None:
        def run() -> None:
            emitted = 0
            crash = self.service.crash_after
            for i in range(self.n):
                if self.cancelled.is_set():
                    break
                if crash is not None and i == crash:
                    self.loaded.client.alive = False
                    self.close()
                    sink(Done("error", error="the model worker stopped unexpectedly"))
                    return
                sink(TextChunk(WORDS[i % len(WORDS)]))
                emitted += 1
                time.sleep(self.delay)
            reason = "cancelled" if self.cancelled.is_set() else ("length" if self.n < len(WORDS) else "stop")
            self.close()
            sink(Done(reason, Stats(prompt_tokens=3, completion_tokens=emitted, total_ns=1000)))  # type: ignore[arg-type]

        threading.Thread(target=run, daemon=True).start()

    def cancel(self) -> None:
        self.cancelled.set()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.service.open -= 1


class FakeHearth:
    """The service interface the server uses, with no engine behind it."""

    def __init__(self, settings: Settings | None = None, delay: float = 0.0) -> None:
        self.settings = settings or Settings()
        self.store = FakeStore()
        self.scheduler = FakeScheduler(self.store)
        self.delay = delay
        self.open = 0
        self.calls: list[tuple[str, Any]] = []
        self.fail: Exception | None = None  # raised by the next chat/generate/embed
        self.crash_after: int | None = None  # words before the "worker" dies

    def _generation(self, model: str, options: dict[str, Any] | None) -> FakeGeneration:
        if self.fail is not None:
            raise self.fail
        manifest = self.store.get(model)
        opts = parse_options(options)
        loaded = self.scheduler.models.setdefault(manifest.name, FakeLoaded(manifest))
        self.open += 1
        n = min(opts.num_predict, len(WORDS)) if opts.num_predict > 0 else len(WORDS)
        return FakeGeneration(self, loaded, n, self.delay)

    def chat(self, model: str, messages: list[Message], options: dict[str, Any] | None = None, *,
             keep_alive: float | None = None, turn: Any = None) -> FakeGeneration:
        self.calls.append(("chat", (model, messages, options, keep_alive)))
        return self._generation(model, options)

    def generate(self, model: str, prompt: str, options: dict[str, Any] | None = None, *, system: str | None = None,
                 raw: bool = False, keep_alive: float | None = None) -> FakeGeneration:
        self.calls.append(("generate", (model, prompt, options, system, raw, keep_alive)))
        return self._generation(model, options)

    def embed(self, model: str, inputs: list[str], *, keep_alive: float | None = None) -> Embeddings:
        if self.fail is not None:
            raise self.fail
        manifest = self.store.get(model)
        return Embeddings(manifest.name, [[3.0, 4.0] for _ in inputs], len(inputs))

    def load(self, model: str, *, keep_alive: float | None = None, num_ctx: int | None = None) -> FakeLoaded:
        manifest = self.store.get(model)
        return self.scheduler.models.setdefault(manifest.name, FakeLoaded(manifest))

    def close(self) -> None:
        pass


def events(texts: list[str], reason: str = "stop") -> list[Event]:
    """A list of events as a generation would emit them."""
    return [*(TextChunk(t) for t in texts), Done(reason)]  # type: ignore[arg-type]
