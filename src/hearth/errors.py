"""Hearth's exception tree.

Every error a user or client can cause is a subclass of `HearthError`. Each carries a sentence for humans
(`str(err)`) and an optional `hint` (what to do next). The CLI prints both; the server maps errors to HTTP
status codes and protocol error bodies *by class* (see `hearth.server.errors`), never by message text.

    HearthError
    ├── InvalidRequestError          bad input from the user or a client (→ 400)
    │   ├── InvalidNameError         a model name that is not allowed
    │   ├── InvalidOptionError       a sampling/context option out of range or of the wrong type
    │   ├── InvalidModelFileError    a file that is not a well-formed GGUF model
    │   ├── TemplateError            a chat template that fails to render
    │   ├── ContextOverflowError     the prompt does not fit in the context window
    │   └── DraftModelError          a draft model (speculative decoding) whose vocabulary differs from the model's
    ├── NotFoundError                a model (or other named thing) that does not exist (→ 404)
    ├── ConflictError                a name that already exists, etc. (→ 409)
    ├── StoreError                   the model store is damaged or a blob failed its hash check (→ 500)
    │   └── IntegrityError           a file whose sha256 is not the one it should have
    ├── InsufficientMemoryError      a model that does not fit in memory (→ 507)
    ├── InsufficientStorageError     not enough free disk space for a download or a bundle (→ 507)
    ├── DownloadError                a model could not be fetched from Hugging Face or failed verification (→ 502)
    │   └── UnsafeRedirectError      the hub sent a request on to a host Hearth does not download from
    ├── OfflineError                 something that needs the network was asked for in offline mode (→ 403)
    ├── PairingError                 a pairing code that is wrong, used or expired (→ 401)
    ├── RemoteError                  a remote engine failed or could not be reached (→ 502)
    │   ├── RemoteAuthError          the remote refused Hearth's key (→ 502: the client's own key was fine)
    │   └── RemoteTimeoutError       the remote did not answer in time (→ 504)
    ├── BundleError                  a portable bundle that cannot be made or read (→ 500)
    │   ├── IncompleteBundleError    a bundle folder whose export never finished, or that lacks a file it lists
    │   └── MissingWheelsError       packages for which no wheel could be found or downloaded (`missing`)
    ├── BusyError                    the request queue is full (→ 503, Retry-After)
    ├── ClientGoneError              the client went away before its answer started (nobody to tell)
    └── EngineError                  llama.cpp failed to load or run a model (→ 500)
        ├── WorkerCrashedError       the worker process running a model died (→ 503)
        └── RpcWorkerError           an RPC worker (`rpc_workers`) that cannot be reached or used (→ 502)
"""

from __future__ import annotations


class HearthError(Exception):
    """Base class of every error Hearth reports to a user or client."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class InvalidRequestError(HearthError):
    """The request (CLI arguments, API body, file) is malformed or out of range."""

    def __init__(self, message: str, *, hint: str | None = None, field: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.field = field


class InvalidNameError(InvalidRequestError):
    """A model name that Hearth refuses (path tricks, bad characters, too long)."""


class InvalidOptionError(InvalidRequestError):
    """A generation option that is of the wrong type or out of range."""


class InvalidModelFileError(InvalidRequestError):
    """A file that is not a valid GGUF model (truncated, malformed, hostile)."""


class TemplateError(InvalidRequestError):
    """A chat template that could not be rendered safely."""


class ContextOverflowError(InvalidRequestError):
    """The prompt is longer than the model's context window allows."""


class DraftModelError(InvalidRequestError):
    """A draft model that cannot draft for this model: its vocabulary (tokens, BOS/EOS) differs."""


class NotFoundError(HearthError):
    """A model or other named object that does not exist."""


class ConflictError(HearthError):
    """An operation that conflicts with existing state (e.g. a name already taken)."""


class StoreError(HearthError):
    """The model store is damaged, or a blob failed verification."""


class IntegrityError(StoreError):
    """A file whose content does not match the sha256 it should have (a corrupt or tampered download).

    `path` is the file that failed, when it was one of several (a part of a split model).
    """

    def __init__(self, message: str, *, hint: str | None = None, path: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.path = path


class InsufficientMemoryError(HearthError):
    """The model would not fit in this machine's memory budget."""


class InsufficientStorageError(HearthError):
    """There is not enough free disk space for a download."""


class DownloadError(HearthError):
    """A download failed: the hub was unreachable or refused, or the file failed its size or hash check."""


class UnsafeRedirectError(DownloadError):
    """The hub redirected a request to a host outside `download_hosts`, to plain http, or to a private address."""


class OfflineError(HearthError):
    """Offline mode is on and the request needs the network (a pull, a search, a remote model's header)."""


class BundleError(HearthError):
    """A portable bundle (`hearth bundle`) that cannot be written, or whose BUNDLE.json is damaged."""


class IncompleteBundleError(BundleError):
    """A bundle folder without a finished BUNDLE.json (its export stopped), or missing a file it lists."""


class MissingWheelsError(BundleError):
    """Wheels that could not be found on this machine or downloaded; `missing` names each package and why."""

    def __init__(self, message: str, *, hint: str | None = None, missing: list[str] | None = None) -> None:
        super().__init__(message, hint=hint)
        self.missing = list(missing or [])


class PairingError(HearthError):
    """A device offered a pairing code that is unknown, already used or expired."""


class RemoteError(HearthError):
    """A remote engine (`hearth remote`) failed, or could not be reached."""


class RemoteAuthError(RemoteError):
    """A remote engine refused the key Hearth sent it (or asked for one)."""


class RemoteTimeoutError(RemoteError):
    """A remote engine did not answer in time."""


class BusyError(HearthError):
    """Too many requests are waiting; try again later."""

    def __init__(self, message: str, *, hint: str | None = None, retry_after: int = 1) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class ClientGoneError(HearthError):
    """The client went away while its request was being prepared; the work stopped."""


class EngineError(HearthError):
    """llama.cpp failed to load or run a model."""


class WorkerCrashedError(EngineError):
    """The worker process that ran a model died (crash, out-of-memory kill)."""


class RpcWorkerError(EngineError):
    """An RPC worker a model is to be spread over (`rpc_workers`) is unreachable, busy or unusable."""
