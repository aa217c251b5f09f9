"""Remote models behind the one door: registered by name, answered through the same `Generation` as local ones.

A chat with a remote model opens the request first (so a refusal is a typed error with its status), then
streams the remote's events through a `RemoteSource`. Every request is a named purpose in the egress log
(`remote NAME`), and offline mode refuses remotes outright: they are the one place where prompts leave
the machine by design.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from hearth import egress
from hearth.errors import ConflictError, InvalidRequestError
from hearth.modelfile import Modelfile, ModelfileError
from hearth.options import Options, parse_options
from hearth.remote import APIS, Exchange, Registry, Remote, chat_request, check_url, offered, open_chat
from hearth.service.generation import Generation
from hearth.service.loaded import Turn
from hearth.store import parse_name
from hearth.types import Done, Event, Message, Sink


def with_persona(remote: Remote, messages: list[Message], options: Options) -> tuple[list[Message], Options]:
    """The conversation and options a persona's remote gets: its seed turns after any system prompt, its system
    prompt when the conversation has none, and the request's options over its defaults."""
    if remote.messages:
        head = 1 if messages and messages[0].role == "system" else 0
        seeds = [Message(m["role"], m["content"]) for m in remote.messages]
        messages = [*messages[:head], *seeds, *messages[head:]]
    if remote.system and not any(m.role == "system" for m in messages):
        messages = [Message("system", remote.system), *messages]
    if remote.parameters:
        options = options.over(parse_options(remote.parameters))
    return messages, options


class RemoteSource:
    """A generation's events from a remote engine's open stream."""

    def __init__(self, remote: Remote, options: Options, exchange: Exchange,
                 purpose: contextlib.ExitStack) -> None:
        self.remote = remote
        self._options = options
        self.exchange = exchange
        self._purpose = purpose
        self._failed = False

    @property
    def name(self) -> str:
        """The remote model's local name."""
        return self.remote.name

    @property
    def options(self) -> Options:
        """The options the caller gave (the remote applies its own defaults to the rest)."""
        return self._options

    @property
    def alive(self) -> bool:
        """False once the remote's stream failed midway."""
        return not self._failed

    def stream(self) -> Iterator[Event]:
        """The remote's events; the egress log's entry for this request closes with the bytes received."""
        try:
            for event in self.exchange.events():
                if isinstance(event, Done) and event.reason == "error":
                    self._failed = True
                yield event
        finally:
            self._purpose.close()

    def submit(self, sink: Sink) -> None:
        """Stream in a thread of its own, each event to `sink`."""
        def run() -> None:
            for event in self.stream():
                sink(event)
        threading.Thread(target=run, name=f"hearth-remote-{self.remote.name}", daemon=True).start()

    def cancel(self) -> None:
        """Drop the connection: the remote stops, and the stream ends with Done('cancelled')."""
        self.exchange.close()

    def close(self) -> None:
        """Let go of the request (also one never read: a client that left before the answer started), and
        close its egress-log entry."""
        self.exchange.close()
        self._purpose.close()


RECENT = 300.0  # seconds a remote stays listed by `Remotes.in_use` after its last answer


@dataclass(frozen=True)
class RemoteUse:
    """A remote model this process has used lately (`hearth ps`): answers in flight, and when it was last used."""

    remote: Remote
    in_flight: int
    idle_for: float  # seconds since its last answer ended (0 while one is running)

    @property
    def listed_for(self) -> float:
        """Seconds it stays listed if nothing more is asked of it."""
        return max(0.0, RECENT - self.idle_for)


class Remotes:
    """The remote engines registered in one HEARTH_HOME, and chats with them."""

    def __init__(self, home: Path) -> None:
        self.registry = Registry(home)
        self._lock = threading.Lock()
        self._in_flight: dict[str, int] = {}
        self._last: dict[str, float] = {}

    def in_use(self) -> list[RemoteUse]:
        """The remotes with answers running, or used in the last `RECENT` seconds, most recent first."""
        now = time.monotonic()
        with self._lock:
            names = [n for n in self._last if self._in_flight.get(n) or now - self._last[n] < RECENT]
            found = [(self.registry.find(n), self._in_flight.get(n, 0), now - self._last[n]) for n in names]
        uses = [RemoteUse(r, count, 0.0 if count else idle) for r, count, idle in found if r is not None]
        return sorted(uses, key=lambda u: u.idle_for)

    def _started(self, name: str) -> Callable[[], None]:
        with self._lock:
            self._in_flight[name] = self._in_flight.get(name, 0) + 1
            self._last[name] = time.monotonic()
        done = threading.Event()

        def ended() -> None:
            if done.is_set():
                return
            done.set()
            with self._lock:
                self._in_flight[name] -= 1
                self._last[name] = time.monotonic()
        return ended

    def find(self, name: str) -> Remote | None:
        """The remote registered as `name`, if any."""
        return self.registry.find(name)

    def add(self, name: str, url: str, *, model: str | None = None, api: str = "openai",
            key_env: str | None = None, local_names: set[str] | None = None) -> Remote:
        """Register `name` after asking the server what it offers (the model must be among them, or the only
        one when `model` is None); ConflictError if a local model already has the name."""
        if api not in APIS:
            raise InvalidRequestError(f"api must be one of {', '.join(APIS)}", field="api")
        egress.require_network("registering a remote engine")
        probe = Remote(name, check_url(url), api, model or "", key_env=key_env)
        with egress.purpose(f"remote add {name}"):
            models, kind = offered(probe.url, api, probe.key())
        if model is None:
            if len(models) != 1:
                raise InvalidRequestError(f"{probe.url} offers {len(models)} models; say which with --model",
                                          hint=", ".join(models[:20]) or "it lists none", field="model")
            model = models[0]
        elif models and model not in models:
            raise InvalidRequestError(f"{probe.url} does not offer {model!r}", field="model",
                                      hint="it offers: " + ", ".join(models[:20]))
        remote = Remote(name, probe.url, api, model, kind, key_env)
        if local_names is not None and str(parse_name(name)) in local_names:
            raise ConflictError(f"a local model is already called {name!r}", hint="choose another name")
        return self.registry.add(remote)

    def offered(self, url: str, api: str = "openai", key_env: str | None = None) -> tuple[list[str], str]:
        """What a server offers (model ids) and what kind of server it is, without registering anything."""
        egress.require_network("asking a remote engine what it offers")
        key = Remote("probe", check_url(url), api, "", key_env=key_env).key()
        with egress.purpose(f"remote list {check_url(url)}"):
            return offered(url, api, key)

    def create_persona(self, name: str, base: Remote, modelfile: Modelfile,
                       local_names: set[str]) -> tuple[Remote, bool, list[str]]:
        """Register `name` as a persona of the remote `base` (its system prompt, defaults and seed turns, laid
        over the base's own): the new remote, whether it replaced one, and warnings.

        ModelfileError (naming the line) for what only local weights can take: TEMPLATE and ADAPTER.
        """
        if modelfile.template is not None:
            raise ModelfileError(modelfile.template.line, "TEMPLATE cannot apply to a remote model: its server "
                                 "renders its own chat template", hint="leave TEMPLATE out")
        if modelfile.adapters:
            raise ModelfileError(modelfile.adapters[0].line, "ADAPTER needs local weights: a remote model cannot "
                                 "take a LoRA adapter", hint="leave ADAPTER out, or build FROM a local model")
        parameters = {**base.parameters, **modelfile.parameters}
        parse_options(parameters)  # refused here (400) rather than at the first chat
        target = str(parse_name(name))
        if target in local_names:
            raise ConflictError(f"a local model is already called {target!r}", hint="choose another name")
        warnings = list(modelfile.warnings)
        if modelfile.licenses:
            warnings.append("LICENSE is not kept for a remote model's persona (the remote's own terms apply)")
        persona = replace(
            base, name=target, base=base.base or base.name, added="",
            system=modelfile.system.text if modelfile.system is not None else base.system,
            parameters=parameters,
            messages=[*base.messages, *({"role": m.role, "content": m.content} for m in modelfile.messages)])
        replaced = self.registry.find(target) is not None
        return self.registry.add(persona, replace=True), replaced, warnings

    def chat(self, remote: Remote, messages: list[Message], options: Options, turn: Turn | None) -> Generation:
        """Open a streamed chat with `remote` (typed errors if it is refused) and hand back its Generation."""
        egress.require_network(f"the remote model {remote.name} ({remote.url})")
        messages, options = with_persona(remote, messages, options)
        turn = turn or Turn()
        request = chat_request(remote, messages, options, tools=turn.tools, tool_choice=turn.tool_choice,
                               think=turn.think)
        purpose = contextlib.ExitStack()
        activity = purpose.enter_context(egress.purpose(f"remote {remote.name}"))
        try:
            exchange = open_chat(remote, request)
        except BaseException:
            purpose.close()
            raise
        purpose.callback(lambda: setattr(activity, "received", exchange.received))
        purpose.callback(self._started(remote.name))
        source = RemoteSource(remote, options, exchange, purpose)
        return Generation(source, [], source.close, 0)
