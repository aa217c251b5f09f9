"""Talking to a remote engine over HTTP (httpx): open a streamed chat, read its events, list what it offers.

The request is opened before the answer is handed on, so the remote's refusals become Hearth's typed
errors with their status (unknown model 404, bad parameter 400, refused key, unreachable, timeout: 502/504),
each naming the remote. Once streaming, a failure ends the answer in-band (`Done("error")`). TLS is
verified (httpx's default); keys come from the environment per request and go only to that remote.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from hearth.errors import (
    HearthError,
    InvalidRequestError,
    NotFoundError,
    RemoteAuthError,
    RemoteError,
    RemoteTimeoutError,
)
from hearth.remote.registry import Remote, check_url
from hearth.remote.wire import Reader, Request, error_message, offered_models
from hearth.types import Done, Event

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 300.0  # between two chunks: a big remote model may think for a while before its first token
LIST_TIMEOUT = 10.0


def _timeout() -> httpx.Timeout:
    return httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT)


def _headers(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


@dataclass
class Exchange:
    """One open streamed request to a remote: read its events with `events()`, stop it with `close()`."""

    remote: Remote
    client: httpx.Client
    response: httpx.Response
    started: int = field(default_factory=time.perf_counter_ns)
    received: int = 0  # bytes of the answer, for the egress log
    closed: bool = False

    def events(self) -> Iterator[Event]:
        """The answer's events, ending with Done (an in-band error if the connection fails midway)."""
        reader = Reader(self.remote.api)
        first = 0
        try:
            for line in self.response.iter_lines():
                self.received += len(line) + 1
                chunk = _parse(line, self.remote.api)
                if chunk is None:
                    if line.strip() == "data: [DONE]":
                        break
                    continue
                for event in reader.read(chunk):
                    if isinstance(event, Done):
                        yield self._timed(event, first)
                        return
                    first = first or time.perf_counter_ns()
                    yield event
            for event in reader.end():
                yield self._timed(event, first) if isinstance(event, Done) else event
        except (httpx.HTTPError, httpx.StreamError) as err:  # a dropped connection, or a stream already read
            if self.closed:
                yield self._timed(Done("cancelled", reader.stats), first)
                return
            yield self._timed(Done("error", reader.stats, error=f"the remote model {self.remote.name} "
                                   f"({self.remote.url}) stopped answering: {_reason(err)}"), first)
        finally:
            self.close()

    def _timed(self, done: Done, first: int) -> Done:
        now = time.perf_counter_ns()
        stats = done.stats
        stats.total_ns = now - self.started
        stats.prompt_ns = (first or now) - self.started
        stats.eval_ns = now - first if first else 0
        return done

    def close(self) -> None:
        """Stop reading and drop the connection (the remote sees the client go away)."""
        if not self.closed:
            self.closed = True
            self.response.close()
            self.client.close()


def open_chat(remote: Remote, request: Request) -> Exchange:
    """Send `request` to `remote` and return the open stream; typed errors if it is refused or unreachable."""
    client = httpx.Client(timeout=_timeout(), follow_redirects=False, trust_env=True)
    try:
        response = client.send(client.build_request("POST", remote.url + request.path, json=request.body,
                                                     headers=_headers(remote.key())), stream=True)
    except httpx.HTTPError as err:
        client.close()
        raise _unreachable(remote, err) from None
    if response.status_code != 200:
        body = response.read()
        response.close()
        client.close()
        raise _refusal(remote, response.status_code, error_message(body))
    return Exchange(remote, client, response)


def offered(url: str, api: str, key: str | None) -> tuple[list[str], str]:
    """The model ids a server offers through `api`, and what kind of server it is (`registry.SERVERS`)."""
    base = check_url(url)
    probe = Remote("probe", base, api, "")
    path = "/api/tags" if api == "ollama" else "/v1/models"
    try:
        with httpx.Client(timeout=LIST_TIMEOUT, follow_redirects=False) as client:
            response = client.get(base + path, headers=_headers(key))
            if response.status_code != 200:
                raise _refusal(probe, response.status_code, error_message(response.content))
            models = offered_models(api, response.json())
            kind = _kind(client, base, api, key)
    except httpx.HTTPError as err:
        raise _unreachable(probe, err) from None
    except ValueError:
        raise RemoteError(f"{base}{path} did not answer with JSON: is it an {api} API?",
                          hint="check the URL and --api (openai or ollama)") from None
    return models, kind


def _kind(client: httpx.Client, base: str, api: str, key: str | None) -> str:
    """Which server answered: Hearth says so in /api/version, llama-server has /props, Ollama has /api/version."""
    try:
        version = client.get(base + "/api/version", headers=_headers(key))
        data = version.json() if version.status_code == 200 else {}
        if isinstance(data, dict) and "hearth_version" in data:
            return "hearth"
        if api == "ollama" and isinstance(data, dict) and "version" in data:
            return "ollama"
        props = client.get(base + "/props", headers=_headers(key))
        found = props.json() if props.status_code == 200 else {}
        if isinstance(found, dict) and "default_generation_settings" in found:
            return "llama-server"
    except (httpx.HTTPError, ValueError):
        pass
    return "ollama" if api == "ollama" else "openai-compatible"


def _parse(line: str, api: str) -> dict[str, Any] | None:
    text = line.strip()
    if api == "openai":
        if not text.startswith("data:"):
            return None
        text = text[5:].strip()
        if text == "[DONE]":
            return None
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _refusal(remote: Remote, status: int, message: str) -> HearthError:
    where = f"the remote model {remote.name} ({remote.where})" if remote.model else remote.url
    said = f": {message}" if message else ""
    if status in (401, 403):
        return RemoteAuthError(f"{remote.url} refused Hearth's request for {where} (HTTP {status}){said}",
                               hint=f"check the key in ${remote.key_env}" if remote.key_env else
                               "register it with --key-env NAME_OF_THE_VARIABLE_HOLDING_THE_KEY")
    if status == 404:
        return NotFoundError(f"{where}: the remote server does not know it (HTTP 404){said}",
                             hint=f"`hearth remote add {remote.url} --api {remote.api}` lists what it offers")
    if status in (400, 422):
        return InvalidRequestError(f"{where} refused the request{said}",
                                   hint="the remote server does not accept one of the parameters")
    if status == 504 or status == 408:
        return RemoteTimeoutError(f"{where} timed out (HTTP {status}){said}")
    return RemoteError(f"{where} failed (HTTP {status}){said}", hint="try again later")


def _unreachable(remote: Remote, err: httpx.HTTPError) -> HearthError:
    where = f"the remote model {remote.name} ({remote.url})" if remote.model else remote.url
    if isinstance(err, httpx.TimeoutException):
        return RemoteTimeoutError(f"{where} did not answer in time: {_reason(err)}",
                                  hint="check that the server is up and not overloaded")
    return RemoteError(f"could not reach {where}: {_reason(err)}",
                       hint="check that the server is running and the URL (`hearth remote list`)")


def _reason(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text[:200]
