"""The shim's own error types for model methods. A reply's `error.type` is the class name, which
the supervisor maps to an HTTP status (see PROTOCOL.md, *Models*)."""


class InvalidInput(ValueError):
    """The request's params are malformed (HTTP 400): the message names the bad field."""


class ModelLoadError(Exception):
    """The model could not be loaded (HTTP 422): missing or unreadable file, not a model, bad
    giskard-model.json, unpickling failed. The message names the path and the cause; the
    original exception, if any, is chained as `__cause__` so the traceback shows it."""
