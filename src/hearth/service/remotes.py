"""Remote models behind the one door: registered by name, answered through the same `Generation` as local ones.

A chat with a remote model opens the request first (so a refusal is a typed error with its status), then
streams the remote's events through a `RemoteSource`. Every request is a named purpose in the egress log
(`remote NAME`), and offline mode refuses remotes outright: they are the one place where prompts leave
the machine by design.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

from hearth import egress
from hearth.errors import ConflictError, InvalidRequestError
from hearth.options import Options
from hearth.remote import APIS, Exchange, Registry, Remote, chat_request, check_url, offered, open_chat
from hearth.service.generation import Generation
from hearth.service.loaded import Turn
from hearth.store import parse_name
from hearth.types import Done, Event, Message, Sink


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


class Remotes:
    """The remote engines registered in one HEARTH_HOME, and chats with them."""

    def __init__(self, home: Path) -> None:
        self.registry = Registry(home)

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

    def chat(self, remote: Remote, messages: list[Message], options: Options, turn: Turn | None) -> Generation:
        """Open a streamed chat with `remote` (typed errors if it is refused) and hand back its Generation."""
        egress.require_network(f"the remote model {remote.name} ({remote.url})")
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
        source = RemoteSource(remote, options, exchange, purpose)
        return Generation(source, [], source.close, 0)
