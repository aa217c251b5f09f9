"""`Hearth`: the one service that every surface (the CLI, the HTTP server, the web page) drives.

Its public methods are the whole interface: surfaces never reach into `store`, `scheduler` or a worker's
client. Models on disk (list, show, copy, remove, import, pull, create, fit, catalog, search), models in
memory (load, ps, stop), generation (chat, generate, embed, and `chat_turn`, the tool-call loop), and
conversations (`conversations`, see `hearth.service.conversations`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from hearth import egress
from hearth.config import Settings, load_settings
from hearth.errors import HearthError, InvalidRequestError, NotFoundError
from hearth.options import Options
from hearth.service.attachments import TextFit, extract_text, fit_text
from hearth.service.conversations import Conversations, ReplayTurn
from hearth.service.devices import Devices
from hearth.service.documents import CitedAnswer, Documents, Grounded
from hearth.service.generation import Generation, LocalSource
from hearth.service.loaded import LoadedModel, Turn
from hearth.service.remotes import Remotes, RemoteUse
from hearth.service.running import Running, running
from hearth.service.scheduler import ClientFactory, Scheduler, model_shape
from hearth.service.tools import MAX_TOOL_ROUNDS, Executor, TurnResult, answer_turn
from hearth.service.tuning import EngineSettings
from hearth.store import Manifest, ModelStore
from hearth.types import Message, Sink

if TYPE_CHECKING:
    from hearth.bundle import BundleImport, ExportReport
    from hearth.fit import FitReport, ModelShape
    from hearth.fit.tuning import Calibration
    from hearth.history import Conversation
    from hearth.hub import CatalogEntry, Leftover, SearchResult
    from hearth.modelfile import Created, Modelfile
    from hearth.remote import Remote
    from hearth.service.privacy import PrivacyReport
    from hearth.store.importers import ImportReport

MAX_MESSAGES = 10_000


def _counting(progress: Callable[[dict[str, Any]], None] | None,
              activity: egress.Activity) -> Callable[[dict[str, Any]], None]:
    """`progress`, also adding the bytes each part's download fetched to `activity` (for the egress log).

    A part's first event says how much was on disk before (a resumed partial, or a blob already stored)."""
    first: dict[str, int] = {}
    latest: dict[str, int] = {}

    def emit(event: dict[str, Any]) -> None:
        digest, completed = event.get("digest"), event.get("completed")
        if isinstance(digest, str) and isinstance(completed, int):
            first.setdefault(digest, completed)
            latest[digest] = completed
            activity.received = sum(latest[d] - first[d] for d in latest)
        if progress is not None:
            progress(event)
    return emit


@dataclass(frozen=True)
class Embeddings:
    """Vectors for each input and the number of tokens read."""

    model: str
    vectors: list[list[float]]
    prompt_tokens: int


@dataclass(frozen=True)
class CatalogRow:
    """A catalog entry with its estimated shape, fit label here and memory at a 4,096-token context."""

    entry: CatalogEntry
    shape: ModelShape
    fit: str
    memory_at_4k: int


class Hearth:
    """Models on disk, models in memory, generation over both, and the conversations they make."""

    def __init__(self, settings: Settings | None = None, store: ModelStore | None = None,
                 client_factory: ClientFactory | None = None) -> None:
        self.settings = settings or load_settings()
        self.store = store or ModelStore()
        self.scheduler = Scheduler(self.store, self.settings, client_factory)
        self.conversations = Conversations(self.settings)
        self.remotes = Remotes(self.store.home)
        self.documents = Documents(self.settings, lambda: self.store.home, self.list_models, self.show, self.embed)
        self.devices = Devices(self.store.home)
        # offline mode's guard and the egress log watch every connection of this process from here on
        egress.install(self.store.home, offline=self.settings.offline)

    # -- generation -----------------------------------------------------------------------------------------
    def _acquire(self, model: str, options: Options | None,
                 keep_alive: float | None) -> tuple[LoadedModel, Options, int]:
        if options is not None and not isinstance(options, Options):
            raise TypeError("options must be an hearth.options.Options: parse_options({...}) makes one")
        num_ctx = options.num_ctx if options is not None and "num_ctx" in options.given else None
        was_loaded = any(m.name == model for m in self.scheduler.loaded())
        loaded = self.scheduler.acquire(model, num_ctx=num_ctx, keep_alive=keep_alive)
        return loaded, loaded.options(options), 0 if was_loaded else loaded.load_ns

    def chat(self, model: str, messages: list[Message], options: Options | None = None, *,
             keep_alive: float | None = None, turn: Turn | None = None,
             cancel: threading.Event | None = None) -> Generation:
        """Answer the last message of a conversation with `model` (with tools/thinking per `turn`).

        `cancel`, once set, stops the preparation (fitting a long conversation) with ClientGoneError.
        """
        if not messages:
            raise InvalidRequestError("a chat needs at least one message", field="messages")
        if len(messages) > MAX_MESSAGES:
            raise InvalidRequestError(f"at most {MAX_MESSAGES} messages are allowed", field="messages")
        remote = self._remote(model)
        if remote is not None:
            if options is not None and not isinstance(options, Options):
                raise TypeError("options must be an hearth.options.Options: parse_options({...}) makes one")
            return self.remotes.chat(remote, messages, options or Options(), turn)
        loaded, opts, load_ns = self._acquire(model, options, keep_alive)
        try:
            job, notices, parser = loaded.chat_job(messages, opts, turn, cancel)
        except BaseException:
            self.scheduler.release(loaded)
            raise
        return Generation(LocalSource(loaded, job), notices, lambda: self.scheduler.release(loaded), load_ns, parser)

    def generate(self, model: str, prompt: str, options: Options | None = None, *,
                 system: str | None = None, raw: bool = False, keep_alive: float | None = None) -> Generation:
        """Complete a single prompt (through the chat template unless `raw`)."""
        if self._remote(model) is not None:
            if raw:
                raise InvalidRequestError(f"{model} is a remote model: raw prompts need a local one", field="raw")
            return self.chat(model, ([Message("system", system)] if system else []) + [Message("user", prompt)],
                             options)
        loaded, opts, load_ns = self._acquire(model, options, keep_alive)
        try:
            job, notices = loaded.prompt_job(prompt, opts, system=system, raw=raw)
        except BaseException:
            self.scheduler.release(loaded)
            raise
        return Generation(LocalSource(loaded, job), notices, lambda: self.scheduler.release(loaded), load_ns)

    def chat_turn(self, model: str, messages: list[Message], options: Options | None = None, *,
                  tools: list[dict[str, Any]] | None = None, tool_choice: str = "auto", think: bool | None = None,
                  executor: Executor | None = None, on_event: Sink | None = None,
                  max_rounds: int = MAX_TOOL_ROUNDS) -> TurnResult:
        """Answer the last message, running the tools the model calls through `executor` (see `service.tools`)."""
        return answer_turn(self.chat, model, messages, options, tools=tools or [], tool_choice=tool_choice,
                           think=think, executor=executor, on_event=on_event, max_rounds=max_rounds)

    def replay(self, ref: str, model: str, options: Options | None = None, *, record: bool = True,
               on_event: Sink | None = None) -> tuple[Conversation, Iterator[ReplayTurn]]:
        """Ask `model` a recorded conversation's questions again, one `ReplayTurn` at a time."""
        return self.conversations.replay(self.chat, ref, model, options, record=record, on_event=on_event)

    def count_tokens(self, model: str, messages: list[Message], *, turn: Turn | None = None) -> int:
        """The prompt tokens a chat request would take (loads the model; generates nothing)."""
        self._local_only(model, "counting tokens")
        if not messages:
            raise InvalidRequestError("a chat needs at least one message", field="messages")
        loaded, _, _ = self._acquire(model, None, None)
        try:
            return loaded.count_tokens(messages, turn)
        finally:
            self.scheduler.release(loaded)

    def embed(self, model: str, inputs: list[str], *, keep_alive: float | None = None) -> Embeddings:
        """Embedding vectors (mean-pooled) for each input text."""
        self._local_only(model, "embeddings")
        loaded, _, _ = self._acquire(model, None, keep_alive)
        try:
            pairs = loaded.client.call("embed", list(inputs))
        finally:
            self.scheduler.release(loaded)
        return Embeddings(loaded.name, [v for v, _ in pairs], sum(n for _, n in pairs))

    def extract_text(self, name: str, data: bytes) -> str:
        """The text of an attached file (PDF, DOCX, HTML or plain text, chosen by `name`'s suffix)."""
        return extract_text(name, data)

    def fit_text(self, model: str, text: str, *, num_ctx: int | None = None) -> TextFit:
        """How many of `model`'s tokens `text` takes, cut to leave room for a conversation when too long."""
        if self._remote(model) is not None:  # its tokenizer is elsewhere: a rough count, nothing cut
            return TextFit(text, len(text) // 4, len(text) // 4, 0)
        loaded = self.scheduler.acquire(model, num_ctx=num_ctx)
        try:
            return fit_text(loaded, text)
        finally:
            self.scheduler.release(loaded)

    # -- documents ------------------------------------------------------------------------------------------
    def ground(self, model: str, messages: list[Message], collection: str) -> Grounded:
        """The last user message framed with `collection`'s best passages (numbered, quoted, within `docs_budget`
        tokens of `model`'s context): send `grounded.messages` to `chat`, then check the answer's citations with
        `grounded.citations()` (streaming) or `grounded.cite(text)`. See `hearth.service.documents`."""
        return self.documents.ground(collection, messages, lambda: self._token_counter(model))

    def answer_with_documents(self, model: str, messages: list[Message], collection: str,
                              options: Options | None = None, *,
                              on_event: Sink | None = None) -> tuple[CitedAnswer, Generation]:
        """Answer the last user message from `collection`'s passages: the answer with invented citations dropped
        and its sources (for the web page and the APIs), and the generation (for its model and statistics).
        `on_event` sees the raw events as they come."""
        grounded = self.ground(model, messages, collection)
        generation = self.chat(model, grounded.messages, options)
        answer = generation.consume(on_event)
        return grounded.cite(answer.text), generation

    @contextmanager
    def _token_counter(self, model: str) -> Iterator[tuple[Callable[[str], int], int]]:
        """(count tokens with `model`'s tokenizer, the passages' budget) while `model` is held."""
        if self._remote(model) is not None:  # no tokenizer here: about 3 characters a token errs on the safe side
            yield (lambda text: len(text) // 3 + 1), self.settings.docs_budget
            return
        loaded, _, _ = self._acquire(model, None, None)
        try:
            yield ((lambda text: len(loaded.client.tokenize(text, add_special=False))),
                   min(self.settings.docs_budget, loaded.n_ctx // 2))
        finally:
            self.scheduler.release(loaded)

    # -- models in memory -----------------------------------------------------------------------------------
    def load(self, model: str, *, keep_alive: float | None = None, num_ctx: int | None = None) -> str:
        """Load a model without generating (Ollama's empty request); returns the name it is loaded under."""
        remote = self._remote(model)
        if remote is not None:  # nothing to load here: the remote server has it
            return remote.name
        loaded = self.scheduler.acquire(model, num_ctx=num_ctx, keep_alive=keep_alive)
        self.scheduler.release(loaded)
        return loaded.name

    def ps(self) -> list[Running]:
        """The loaded models: memory, slots, prompt cache and when each unloads (blocks briefly per worker)."""
        return [running(m, self.scheduler.memory(m)) for m in self.scheduler.loaded()]

    def remotes_in_use(self) -> list[RemoteUse]:
        """Remote models answering now or used in the last five minutes (`hearth ps` lists them too)."""
        return self.remotes.in_use()

    # -- remote engines -------------------------------------------------------------------------------------------
    def _remote(self, model: str) -> Remote | None:
        """The remote registered as `model`, unless a local model has that name (local wins)."""
        remote = self.remotes.find(model)
        return remote if remote is not None and not self._is_local(model) else None

    def _local_only(self, model: str, what: str) -> None:
        if self._remote(model) is not None:
            raise InvalidRequestError(f"{what} needs a local model; {model} is a remote one", field="model")

    def remote(self, name: str) -> Remote | None:
        """The remote engine registered as `name`, if any (and no local model has that name)."""
        return self._remote(name)

    def remote_list(self) -> list[Remote]:
        """The registered remote engines."""
        return self.remotes.registry.list()

    def remote_add(self, name: str, url: str, *, model: str | None = None, api: str = "openai",
                   key_env: str | None = None) -> Remote:
        """Register a model served elsewhere under `name` (asks the server what it offers first)."""
        return self.remotes.add(name, url, model=model, api=api, key_env=key_env,
                                local_names={m.name for m in self.list_models()})

    def remote_remove(self, name: str) -> Remote:
        """Forget a remote engine."""
        return self.remotes.registry.remove(name)

    def remote_offered(self, url: str, *, api: str = "openai", key_env: str | None = None) -> tuple[list[str], str]:
        """The model ids a server offers and what kind of server it is (`hearth remote add URL`)."""
        return self.remotes.offered(url, api, key_env)

    # -- privacy --------------------------------------------------------------------------------------------------
    def privacy(self, *, last: int = 10) -> PrivacyReport:
        """What is stored where, the server's reach, offline mode and the last `last` egress-log entries."""
        from hearth.service.privacy import report

        remotes = [f"{r.name}: {r.where} ({r.api} API)" for r in self.remote_list()]
        devices = [f"{d.id} {d.name[:60]} (paired {time.strftime('%Y-%m-%d', time.localtime(d.paired_at))}, last "
                   f"seen {time.strftime('%Y-%m-%d %H:%M', time.localtime(d.last_seen))})" for d in self.devices.list()]
        return report(self.settings, self.store.home, self.conversations.path, last=last, remotes=remotes,
                      devices=devices)

    @staticmethod
    def privacy_check() -> dict[str, Any]:
        """Prove offline mode's guard in a child process: each attempt, and whether it was `blocked`."""
        from hearth.service.privacy import self_check

        return self_check()

    # -- engine settings --------------------------------------------------------------------------------------
    def set_notice(self, notice: Callable[[str], None]) -> None:
        """Where one-off progress lines go (measuring this machine on a model's first load); default: the log."""
        self.scheduler.tuner.notice = notice

    def engine_settings(self, model: str) -> tuple[EngineSettings, Calibration | None]:
        """The engine settings `model` loads (or would load) with and why, and the calibration they come
        from, without measuring anything."""
        manifest = self.store.get(model)
        loaded = next((m for m in self.scheduler.loaded() if m.name == manifest.name), None)
        tuner = self.scheduler.tuner
        shape = self._shape(manifest)
        calibration = tuner.stored(shape)
        if loaded is not None and loaded.engine is not None:
            return loaded.engine, calibration
        return tuner.current(shape), calibration

    def tune(self, model: str) -> Calibration:
        """Measure the fastest engine settings for `model` on this machine now and keep them (a loaded model
        keeps its settings until it next loads)."""
        manifest = self.store.get(model)
        return self.scheduler.tuner.calibrate(self.store.model_path(manifest), self._shape(manifest),
                                              manifest.name)

    def _shape(self, manifest: Manifest) -> ModelShape:
        path = self.store.model_path(manifest)
        return model_shape(manifest, path, self.store.shape_cache).with_kv(self.settings.kv_cache_type)

    def stop(self, model: str) -> bool:
        """Unload a model now (its running answers end with an error); False if it was not loaded."""
        return self.scheduler.stop(model)

    # -- models on disk -------------------------------------------------------------------------------------
    def list_models(self) -> list[Manifest]:
        """The models on this computer, by name."""
        return self.store.list()

    def show(self, model: str) -> Manifest:
        """One model's manifest (NotFoundError, with a hint, if there is no such model)."""
        return self.store.get(model)

    def local_name(self, model: str) -> str | None:
        """The name `model` (a name, catalog name or hf.co reference) answers to here, if it can answer: a
        stored model's, or a registered remote model's."""
        from hearth.hub import is_hub_reference, parse_hub_reference

        name = str(parse_hub_reference(model).local_name) if is_hub_reference(model) else model
        try:
            return self.store.get(name).name
        except NotFoundError:
            remote = self.remotes.find(name) if not is_hub_reference(model) else None
            return remote.name if remote is not None else None

    def pull_source(self, model: str) -> str | None:
        """Where `hearth pull model` would download from (hf.co/OWNER/REPO), or None if it cannot be pulled."""
        from hearth.hub import is_pullable, lookup

        if not is_pullable(model):
            return None
        match = lookup(model)
        return f"hf.co/{match.entry.repo}" if match else model

    def modelfile(self, model: str, *, paths: bool = True) -> str:
        """A Modelfile that recreates `model`; without `paths` it names models, never files (for the API)."""
        from hearth.modelfile import modelfile_for, write_modelfile

        manifest = self.store.get(model)
        return modelfile_for(self.store, manifest) if paths else write_modelfile(manifest, manifest.name, [])

    def copy(self, source: str, destination: str) -> Manifest:
        """Copy a model under a new name (the weights are shared); ConflictError if the name is taken."""
        return self.store.copy(source, destination)

    def remove(self, model: str) -> Manifest:
        """Unload a model if it is loaded, then delete it (weights go when no other name uses them)."""
        self.store.get(model)  # NotFoundError before touching anything
        self.scheduler.stop(model)
        return self.store.remove(model)

    def import_file(self, path: Path, name: str, *, link: bool = False) -> Manifest:
        """Add a GGUF file under `name` after checking it (hard-linked instead of copied with `link`).

        A file whose own chat template fails on an ordinary conversation is refused before it is stored.
        """
        from hearth.chat.template import refuse_unusable
        from hearth.store import read_gguf_info

        refuse_unusable(read_gguf_info(path).chat_template, path.name)
        return self.store.import_file(path, name, link=link)

    def import_from(self, tool: str | None, folder: Path | None, only: str | None = None) -> ImportReport:
        """Link the models of another tool (ollama, hf, lmstudio; detected from `folder` when None)."""
        from hearth.store.importers import Kind, default_folder, detect_kind, import_from

        kind = tool or (detect_kind(folder) if folder is not None else None)
        if kind is None:
            if folder is None:
                raise InvalidRequestError(
                    "say what to import: a GGUF file, a folder, or --from ollama|hf|lmstudio",
                    hint="e.g. `hearth import --from ollama` or `hearth import model.gguf -n NAME`")
            raise InvalidRequestError(f"{folder} does not look like Ollama's, LM Studio's or the Hugging Face "
                                      "cache's model folder", hint="name the tool with --from ollama|hf|lmstudio")
        if kind not in ("ollama", "hf", "lmstudio"):
            raise InvalidRequestError(f"unknown tool {kind!r}: use ollama, hf or lmstudio")
        known = cast("Kind", kind)
        return import_from(self.store, known, folder if folder is not None else default_folder(known), only=only)

    def pull(self, name: str, progress: Callable[[dict[str, Any]], None] | None = None, *,
             force: bool = False) -> Manifest:
        """Download `name` (a catalog short name or hf.co/OWNER/REPO[:QUANT]) into the store.

        `progress` receives Ollama's pull progress objects (see `hearth.hub.pull`). A model too large for the
        memory budget is refused before its weights are fetched, unless `force`.
        """
        from hearth.fit import this_machine
        from hearth.hub import pull_model

        egress.require_network("`hearth pull`")
        machine = this_machine(measure=False)
        with egress.purpose(f"pull {name}") as activity:
            return pull_model(self.store, name, _counting(progress, activity), machine, budget=self.model_budget,
                              n_seq=self._n_seq, force=force, download_hosts=self.settings.download_hosts)

    def downloads(self) -> list[Leftover]:
        """Partial downloads on disk (given-up pulls, or one running now), oldest first, with their sizes."""
        from hearth.hub import leftovers

        return leftovers(self.store.home / "downloads")

    def clean_downloads(self, *, older_than: float | None = None) -> list[Leftover]:
        """Delete partial downloads no pull is writing (only those untouched for `older_than` s, if given)."""
        from hearth.hub import clean

        return clean(self.store.home / "downloads", older_than=older_than)

    def create(self, name: str, modelfile: str | Modelfile, *, base_dir: Path | None = None,
               pull_missing: Callable[[str], str] | None = None) -> Created:
        """Create (or replace) model `name` from Modelfile text or a built `Modelfile`.

        File paths (a GGUF in FROM, ADAPTER) are only read relative to `base_dir`, which only the CLI gives;
        `pull_missing` fetches a FROM model that is not here yet and returns its local name.
        """
        from hearth.modelfile import Created, create_model, parse_modelfile

        built = parse_modelfile(modelfile) if isinstance(modelfile, str) else modelfile
        base = self._remote(built.base.text)
        if base is not None:  # a persona of a remote model is a remote of its own, carrying the persona
            local = {m.name for m in self.store.list()}
            remote, replaced, warnings = self.remotes.create_persona(name, base, built, local)
            return Created(None, replaced, warnings, remote)
        pull = None if pull_missing is None else (lambda ref: self.store.get(pull_missing(ref)))
        return create_model(self.store, name, built, base_dir=base_dir, pull=pull)

    # -- bundles --------------------------------------------------------------------------------------------------
    def export_bundle(self, folder: Path, models: list[str], *, wheels: bool = True, wheel_dirs: tuple[Path, ...] = (),
                      part_size: int | None = None,
                      progress: Callable[[dict[str, Any]], None] | None = None) -> ExportReport:
        """Write `models` (and, with `wheels`, Hearth and every package it needs) to `folder` as a portable bundle.

        See `hearth.bundle`: a missing wheel is MissingWheelsError before anything is written (in offline mode no
        wheel is downloaded); a full disk is InsufficientStorageError and leaves the folder marked incomplete;
        BUNDLE.json is written last.
        """
        from hearth.bundle import DEFAULT_PART_SIZE, export_bundle

        return export_bundle(self.store, folder, models, part_size=part_size or DEFAULT_PART_SIZE, wheels=wheels,
                             wheel_dirs=wheel_dirs, offline=self.settings.offline, progress=progress)

    def import_bundle(self, folder: Path, *,
                      progress: Callable[[dict[str, Any]], None] | None = None) -> BundleImport:
        """Add the models of the bundle in `folder` that are not here yet; every file is checked before the
        store changes, and a damaged or tampered one (IntegrityError, named) adds nothing."""
        from hearth.bundle import import_bundle

        return import_bundle(self.store, folder, progress)

    # -- will it fit? ---------------------------------------------------------------------------------------
    def fit(self, name: str, *, num_ctx: int | None = None) -> FitReport:
        """Will `name` (local, catalog or hf.co/...) fit here? Reads only a remote model's header."""
        from hearth.fit import this_machine
        from hearth.hub import fit_report

        if egress.is_offline() and not self._is_local(name):
            egress.require_network(f"`hearth fit` of {name}, which you do not have,")
        with egress.purpose(f"fit {name}"):
            return fit_report(self.store, name, this_machine(), budget=self.model_budget, n_seq=self._n_seq,
                              n_ctx=num_ctx or self.settings.num_ctx or None, kv_type=self.settings.kv_cache_type)

    def _is_local(self, name: str) -> bool:
        try:
            self.store.get(name)
        except HearthError:
            return False
        return True

    def fit_labels(self, manifests: list[Manifest] | None = None) -> dict[str, str]:
        """"fits" / "tight" / "too large" for each local model (default: all), for listings like /api/tags."""
        from hearth.fit import label, this_machine

        machine = this_machine(measure=False)
        labels = {}
        for manifest in self.store.list() if manifests is None else manifests:
            try:
                path = self.store.model_path(manifest)
            except HearthError:
                path = None
            shape = model_shape(manifest, path, self.store.shape_cache).with_kv(self.settings.kv_cache_type)
            labels[manifest.name] = label(shape, machine, self.model_budget, self._n_seq, self.settings.num_ctx or None)
        return labels

    def catalog(self) -> list[CatalogRow]:
        """The catalog's short names, each with its estimated size and fit label for this machine."""
        from hearth.fit import ModelShape, estimate, label, this_machine
        from hearth.hub import entries

        machine = this_machine(measure=False)
        rows = []
        for entry in entries():
            shape = ModelShape.from_catalog(entry.as_dict(), entry.quant).with_kv(self.settings.kv_cache_type)
            rows.append(CatalogRow(entry, shape, label(shape, machine, self.model_budget, self._n_seq),
                                   estimate(shape, 4096, 1).total))
        return rows

    def search(self, query: str, *, limit: int = 10) -> list[SearchResult]:
        """GGUF repositories on Hugging Face matching `query`, with sizes and fit labels per quantization."""
        from hearth.fit import this_machine
        from hearth.hub import search

        egress.require_network("`hearth search`")
        with egress.purpose(f"search {query[:80]}"):
            return search(query, this_machine(measure=False), self.model_budget, limit=limit, n_seq=self._n_seq)

    @property
    def _n_seq(self) -> int:
        return max(1, self.settings.num_parallel)

    @property
    def model_budget(self) -> int:
        """The memory budget left for one model once its prompt cache is set aside (as the scheduler counts)."""
        return max(0, self.scheduler.budget - self.settings.prompt_cache_bytes)

    def close(self) -> None:
        """Unload every model."""
        self.scheduler.close()
        self.documents.close()
