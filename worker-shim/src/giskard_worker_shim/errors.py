"""The shim's own error types for model methods. A reply's `error.type` is the class name, which
the supervisor maps to an HTTP status (see PROTOCOL.md, *Models*)."""

from typing import Optional


class InvalidInput(ValueError):
    """The request's params are malformed (HTTP 400): the message names the bad field."""


class ModelLoadError(Exception):
    """The model could not be loaded (HTTP 422): missing or unreadable file, not a model, bad
    giskard-model.json, unpickling failed. The message names the path and the cause; the
    original exception, if any, is chained as `__cause__` so the traceback shows it."""


class ModelFetchError(Exception):
    """An unmanaged worker could not get a model's bytes from the supervisor (see PROTOCOL.md,
    *Model blobs*): the HTTP request failed or answered another status than 200 (`status`, else
    None), the bytes did not match the announced size or SHA-256, the archive was unsafe, or the
    cache could not be written. The message names the blob and the cause."""

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.status = status
