"""`Hearth`: the one service that the CLI and the HTTP server both drive."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hearth.config import Settings, load_settings
from hearth.errors import HearthError, InvalidRequestError
from hearth.options import Options
from hearth.service.generation import Generation
from hearth.service.loaded import LoadedModel, Turn
from hearth.service.scheduler import ClientFactory, Scheduler
from hearth.store import Manifest, ModelStore
from hearth.types import Message

if TYPE_CHECKING:
    from hearth.fit import FitReport

MAX_MESSAGES = 10_000


@dataclass(frozen=True)
class Embeddings:
    """Vectors for each input and the number of tokens read."""

    model: str
    vectors: list[list[float]]
    prompt_tokens: int


class Hearth:
    """Models on disk (`store`), models in memory (`scheduler`), and generation over both."""

    def __init__(self, settings: Settings | None = None, store: ModelStore | None = None,
                 client_factory: ClientFactory | None = None) -> None:
        self.settings = settings or load_settings()
        self.store = store or ModelStore()
        self.scheduler = Scheduler(self.store, self.settings, client_factory)

    def _acquire(self, model: str, options: dict[str, Any] | Options | None,
                 keep_alive: float | None) -> tuple[LoadedModel, Options, int]:
        num_ctx = options.num_ctx if isinstance(options, Options) else (options or {}).get("num_ctx")
        if num_ctx is not None and (isinstance(num_ctx, bool) or not isinstance(num_ctx, int)):
            num_ctx = None  # parse_options below reports the bad value
        was_loaded = any(m.name == model for m in self.scheduler.loaded())
        loaded = self.scheduler.acquire(model, num_ctx=num_ctx, keep_alive=keep_alive)
        try:
            opts = loaded.options(options)
        except HearthError:
            self.scheduler.release(loaded)
            raise
        return loaded, opts, 0 if was_loaded else loaded.load_ns

    def chat(self, model: str, messages: list[Message], options: dict[str, Any] | Options | None = None,
             *, keep_alive: float | None = None, turn: Turn | None = None) -> Generation:
        """Answer the last message of a conversation with `model` (with tools/thinking per `turn`)."""
        if not messages:
            raise InvalidRequestError("a chat needs at least one message", field="messages")
        if len(messages) > MAX_MESSAGES:
            raise InvalidRequestError(f"at most {MAX_MESSAGES} messages are allowed", field="messages")
        loaded, opts, load_ns = self._acquire(model, options, keep_alive)
        try:
            job, notices, parser = loaded.chat_job(messages, opts, turn)
        except BaseException:
            self.scheduler.release(loaded)
            raise
        return Generation(loaded, job, notices, self.scheduler.release, load_ns, parser)

    def generate(self, model: str, prompt: str, options: dict[str, Any] | Options | None = None, *,
                 system: str | None = None, raw: bool = False, keep_alive: float | None = None) -> Generation:
        """Complete a single prompt (through the chat template unless `raw`)."""
        loaded, opts, load_ns = self._acquire(model, options, keep_alive)
        try:
            job, notices = loaded.prompt_job(prompt, opts, system=system, raw=raw)
        except BaseException:
            self.scheduler.release(loaded)
            raise
        return Generation(loaded, job, notices, self.scheduler.release, load_ns)

    def embed(self, model: str, inputs: list[str], *, keep_alive: float | None = None) -> Embeddings:
        """Embedding vectors (mean-pooled) for each input text."""
        loaded, _, _ = self._acquire(model, None, keep_alive)
        try:
            pairs = loaded.client.call("embed", list(inputs))
        finally:
            self.scheduler.release(loaded)
        return Embeddings(loaded.name, [v for v, _ in pairs], sum(n for _, n in pairs))

    def load(self, model: str, *, keep_alive: float | None = None, num_ctx: int | None = None) -> LoadedModel:
        """Load a model without generating (Ollama's empty request); returns it released."""
        loaded = self.scheduler.acquire(model, num_ctx=num_ctx, keep_alive=keep_alive)
        self.scheduler.release(loaded)
        return loaded

    def pull(self, name: str, progress: Callable[[dict[str, Any]], None] | None = None, *,
             force: bool = False) -> Manifest:
        """Download `name` (a catalog short name or hf.co/OWNER/REPO[:QUANT]) into the store.

        `progress` receives Ollama's pull progress objects (see `hearth.hub.pull`). A model too large for the
        memory budget is refused before its weights are fetched, unless `force`.
        """
        from hearth.fit import this_machine
        from hearth.hub import pull_model

        machine = this_machine(measure=False)
        return pull_model(self.store, name, progress, machine, budget=self.model_budget,
                          n_seq=max(1, self.settings.num_parallel), force=force)

    def create(self, name: str, modelfile: str) -> Any:
        """Create (or replace) model `name` from Modelfile text; file paths are refused (API use)."""
        from hearth.modelfile import create_model

        return create_model(self.store, name, modelfile)

    def fit(self, name: str, *, num_ctx: int | None = None) -> FitReport:
        """Will `name` (local, catalog or hf.co/...) fit here? Reads only a remote model's header."""
        from hearth.fit import this_machine
        from hearth.hub import fit_report

        return fit_report(self.store, name, this_machine(), budget=self.model_budget,
                          n_seq=max(1, self.settings.num_parallel), n_ctx=num_ctx or self.settings.num_ctx or None)

    def fit_labels(self, manifests: list[Manifest] | None = None) -> dict[str, str]:
        """"fits" / "tight" / "too large" for each local model (default: all), for listings like /api/tags."""
        from hearth.fit import label, this_machine
        from hearth.service.scheduler import model_shape

        machine = this_machine(measure=False)
        n_seq = max(1, self.settings.num_parallel)
        labels = {}
        for manifest in self.store.list() if manifests is None else manifests:
            try:
                path = self.store.model_path(manifest)
            except HearthError:
                path = None
            labels[manifest.name] = label(model_shape(manifest, path), machine, self.model_budget, n_seq,
                                          self.settings.num_ctx or None)
        return labels

    @property
    def model_budget(self) -> int:
        """The memory budget left for one model once its prompt cache is set aside (as the scheduler counts)."""
        return max(0, self.scheduler.budget - self.settings.prompt_cache_bytes)

    def close(self) -> None:
        """Unload every model."""
        self.scheduler.close()
