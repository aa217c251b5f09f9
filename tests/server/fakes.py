"""A fake `Hearth` service for driving the HTTP layer in-process without a model (the layers above the engine).

It speaks the public interface of `Hearth` that the server uses (list_models/show/copy/remove/modelfile,
ps/stop/load, fit_labels, conversations, and `chat`/`generate` returning generations with
`start(sink)`/`cancel()`/`close()`/`answer`, `embed`). A generation emits its words from a thread, like the
worker-reader thread does. `models` and `loaded` are the fake's own state, for tests to look at.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from hearth.config import Settings
from hearth.errors import ConflictError, NotFoundError
from hearth.options import Options
from hearth.paths import hearth_home
from hearth.service import Conversations, Embeddings, Running
from hearth.service.attachments import extract_text
from hearth.service.devices import Devices
from hearth.store import GGUFInfo, Manifest, Provenance, parse_name
from hearth.types import Answer, Done, Event, Message, Stats, TextChunk

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
class FakeLoaded:
    manifest: Manifest
    alive: bool = True

    @property
    def name(self) -> str:
        return self.manifest.name


class FakeGeneration:
    """Emits WORDS (or `num_predict` of them) from a thread, then Done."""

    def __init__(self, service: FakeHearth, loaded: FakeLoaded, n: int, delay: float) -> None:
        self.service = service
        self.loaded = loaded
        self.n = n
        self.delay = delay
        self.cancelled = threading.Event()
        self.closed = False
        self.emitted = 0
        self.done: Done | None = None

    @property
    def model(self) -> str:
        return self.loaded.name

    remote = False

    @property
    def worker_alive(self) -> bool:
        return self.loaded.alive

    @property
    def answer(self) -> Answer:
        text = "".join(WORDS[i % len(WORDS)] for i in range(self.emitted))
        return Answer(text, self.done or Done("cancelled"))  # type: ignore[arg-type]

    def start(self, sink: Any) -> None:
        def relay(event: Event) -> None:
            if isinstance(event, Done):
                self.done = event
            sink(event)

        def run() -> None:
            emitted = 0
            crash = self.service.crash_after
            for i in range(self.n):
                if self.cancelled.is_set():
                    break
                if crash is not None and i == crash:
                    self.loaded.alive = False
                    self.close()
                    relay(Done("error", error="the model worker stopped unexpectedly"))
                    return
                self.emitted += 1
                relay(TextChunk(WORDS[i % len(WORDS)]))
                emitted += 1
                time.sleep(self.delay)
            reason = "cancelled" if self.cancelled.is_set() else ("length" if self.n < len(WORDS) else "stop")
            self.close()
            relay(Done(reason, Stats(prompt_tokens=3, completion_tokens=emitted, total_ns=1000)))  # type: ignore[arg-type]

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
        self.loaded: dict[str, FakeLoaded] = {}
        self.conversations = Conversations(self.settings)
        self.devices = Devices(hearth_home())
        self.delay = delay
        self.open = 0
        self.calls: list[tuple[str, Any]] = []
        self.fail: Exception | None = None  # raised by the next chat/generate/embed
        self.crash_after: int | None = None  # words before the "worker" dies

    # -- models -------------------------------------------------------------------------------------------
    def extract_text(self, name: str, data: bytes) -> str:
        return extract_text(name, data)  # the real parsers: no engine involved

    def remote_list(self) -> list[Any]:
        return []

    def remotes_in_use(self) -> list[Any]:
        return []

    def list_models(self) -> list[Manifest]:
        return self.store.list()

    def show(self, model: str) -> Manifest:
        return self.store.get(model)

    def modelfile(self, model: str, *, paths: bool = True) -> str:
        return f"FROM {self.store.get(model).name}\n"

    def copy(self, source: str, destination: str) -> Manifest:
        return self.store.copy(source, destination)

    def remove(self, model: str) -> Manifest:
        self.stop(model)
        return self.store.remove(model)

    def fit_labels(self, manifests: list[Manifest] | None = None) -> dict[str, str]:
        return {m.name: "fits" for m in manifests or self.store.list()}

    # -- running ------------------------------------------------------------------------------------------
    def load(self, model: str, *, keep_alive: float | None = None, num_ctx: int | None = None) -> str:
        manifest = self.store.get(model)
        return self.loaded.setdefault(manifest.name, FakeLoaded(manifest)).name

    def ps(self) -> list[Running]:
        worker = {"slots": 2, "slots_busy": 0, "cache_hits": 0, "cached_tokens": 0, "cache_bytes": 0}
        return [Running(m.manifest, 4242, 12345, 10_000, 2048, 2, 0, 300.0, 300.0, dict(worker))
                for m in self.loaded.values()]

    def stop(self, model: str) -> bool:
        return self.loaded.pop(self.store.get(model).name, None) is not None

    # -- generation ---------------------------------------------------------------------------------------
    def _generation(self, model: str, options: Options | None) -> FakeGeneration:
        if self.fail is not None:
            raise self.fail
        manifest = self.store.get(model)
        opts = options or Options()
        loaded = self.loaded.setdefault(manifest.name, FakeLoaded(manifest))
        self.open += 1
        n = min(opts.num_predict, len(WORDS)) if opts.num_predict > 0 else len(WORDS)
        return FakeGeneration(self, loaded, n, self.delay)

    def chat(self, model: str, messages: list[Message], options: Options | None = None, *,
             keep_alive: float | None = None, turn: Any = None, cancel: Any = None) -> FakeGeneration:
        self.calls.append(("chat", (model, messages, options, keep_alive)))
        return self._generation(model, options)

    def generate(self, model: str, prompt: str, options: Options | None = None, *, system: str | None = None,
                 raw: bool = False, keep_alive: float | None = None) -> FakeGeneration:
        self.calls.append(("generate", (model, prompt, options, system, raw, keep_alive)))
        return self._generation(model, options)

    def embed(self, model: str, inputs: list[str], *, keep_alive: float | None = None) -> Embeddings:
        if self.fail is not None:
            raise self.fail
        manifest = self.store.get(model)
        return Embeddings(manifest.name, [[3.0, 4.0] for _ in inputs], len(inputs))

    def close(self) -> None:
        pass


def events(texts: list[str], reason: str = "stop") -> list[Event]:
    """A list of events as a generation would emit them."""
    return [*(TextChunk(t) for t in texts), Done(reason)]  # type: ignore[arg-type]
