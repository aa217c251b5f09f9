"""Errors on the wire: HTTP status chosen by exception class, body shaped for the caller's protocol.

    InvalidRequestError (and subclasses) → 400     NotFoundError → 404      ConflictError → 409
    BusyError → 503 + Retry-After                  InsufficientMemoryError, InsufficientStorageError → 507
    WorkerCrashedError → 503                       DownloadError → 502      OfflineError → 403
    PairingError → 401
    RemoteError (RemoteAuthError) → 502            RemoteTimeoutError → 504 RpcWorkerError → 502
    EngineError, StoreError, anything else → 500

The protocol is chosen by path: `/v1/messages...` answers in Anthropic's shape (`{"type": "error", "error":
{"type", "message"}}`), other `/v1/...` paths in OpenAI's (`{"error": {"message", "type", "param",
"code"}}`), everything else in Ollama's (`{"error": "..."}`). All carry the hint, when there is one, in an
extra `hint` field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hearth import errors
from hearth.paths import hearth_home

_STATUS: list[tuple[type[Exception], int]] = [  # most specific first
    (errors.InvalidRequestError, 400),
    (errors.NotFoundError, 404),
    (errors.ConflictError, 409),
    (errors.BusyError, 503),
    (errors.InsufficientMemoryError, 507),
    (errors.InsufficientStorageError, 507),
    (errors.DownloadError, 502),
    (errors.OfflineError, 403),
    (errors.PairingError, 401),
    (errors.RpcWorkerError, 502),
    (errors.RemoteTimeoutError, 504),
    (errors.RemoteError, 502),
    (errors.WorkerCrashedError, 503),
    (errors.EngineError, 500),
    (errors.StoreError, 500),
]
_OPENAI_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error",
    405: "invalid_request_error", 409: "conflict_error", 413: "invalid_request_error",
    502: "upstream_error", 503: "server_busy_error", 504: "upstream_error", 507: "insufficient_resources_error",
}
_ANTHROPIC_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error",
    405: "invalid_request_error", 409: "invalid_request_error", 413: "request_too_large", 429: "rate_limit_error",
    503: "overloaded_error", 507: "overloaded_error",
}


@dataclass(frozen=True)
class WireError:
    """An error ready to send: status, sentence, optional hint, field and extra headers."""

    status: int
    message: str
    hint: str | None = None
    field: str | None = None
    code: str | None = None
    retry_after: int | None = None

    def headers(self) -> dict[str, str]:
        """Extra response headers (Retry-After for 503s, WWW-Authenticate for 401s)."""
        out: dict[str, str] = {}
        if self.retry_after is not None:
            out["Retry-After"] = str(self.retry_after)
        if self.status == 401:
            out["WWW-Authenticate"] = "Bearer"
        if self.status == 408:  # the client stalled mid-body: what is left of it cannot be trusted
            out["Connection"] = "close"
        return out


def status_for(err: BaseException) -> int:
    """The HTTP status for an exception, by class."""
    for cls, status in _STATUS:
        if isinstance(err, cls):
            return status
    return 500


def from_exception(err: BaseException) -> WireError:
    """A WireError for any exception; unexpected ones get a generic sentence (details stay in the log)."""
    status = status_for(err)
    if not isinstance(err, errors.HearthError):
        return WireError(500, "internal server error", code="internal_error")
    field = err.field if isinstance(err, errors.InvalidRequestError) else None
    retry = err.retry_after if isinstance(err, errors.BusyError) else (5 if status == 503 else None)
    code = _code(err)
    hint = scrub(err.hint) if err.hint else None
    return WireError(status, scrub(err.message), hint, field, code, retry)


def scrub(text: str) -> str:
    """`text` without this machine's paths: HEARTH_HOME and the user's home folder are named, not spelled out."""
    for folder, name in ((str(hearth_home()), "$HEARTH_HOME"), (str(Path.home()), "~")):
        if folder and folder != "/":
            text = text.replace(folder, name)
    return text


def _code(err: errors.HearthError) -> str | None:
    if isinstance(err, errors.ContextOverflowError):
        return "exceed_context_size_error"
    if isinstance(err, errors.NotFoundError):
        return "model_not_found"
    if isinstance(err, errors.BusyError):
        return "server_busy"
    if isinstance(err, errors.WorkerCrashedError):
        return "worker_crashed"
    return None


def is_openai(path: str) -> bool:
    """True for paths that speak OpenAI's protocol (or Anthropic's, which lives under /v1 too)."""
    return path == "/v1" or path.startswith("/v1/")


def is_anthropic(path: str) -> bool:
    """True for the paths of Anthropic's Messages API."""
    return path == "/v1/messages" or path.startswith("/v1/messages/")


def body(err: WireError, path: str) -> dict[str, Any]:
    """The error body in the protocol of `path`; the hint is also appended to the message, which is
    often all a client shows."""
    hint = err.hint
    if err.code == "model_not_found":  # the store's hint names CLI commands; an API client wants a route
        hint = f"GET {'/v1/models' if is_openai(path) else '/api/tags'} lists the models this server has"
    text = f"{err.message} ({hint})" if hint else err.message
    if is_anthropic(path):
        error: dict[str, Any] = {"type": _ANTHROPIC_TYPES.get(err.status, "api_error"), "message": text}
        if hint:
            error["hint"] = hint
        if err.field:
            error["field"] = err.field
        return {"type": "error", "error": error}
    if is_openai(path):
        inner: dict[str, Any] = {
            "message": text, "type": _OPENAI_TYPES.get(err.status, "server_error"),
            "param": err.field, "code": err.code,
        }
        if hint:
            inner["hint"] = hint
        return {"error": inner}
    out: dict[str, Any] = {"error": text}
    if hint:
        out["hint"] = hint
    if err.field:
        out["field"] = err.field
    return out

