"""Request methods: name -> handler. A handler takes the request's `params` (a dict) and returns
the reply's `result` (a JSON-serializable dict); an exception becomes a structured error reply.
Handlers run on the worker's I/O thread, one at a time (worker.py, calls.py).
"""

import functools
from typing import Any, Callable, Dict, Optional

from giskard_worker_shim import environment, methods, models

Handler = Callable[[Dict[str, Any]], Dict[str, Any]]


class Dispatcher:
    """A registry of methods. Built once before the worker runs; read-only afterwards."""

    def __init__(self) -> None:
        self._methods = {}  # type: Dict[str, Handler]

    def register(self, name: str, handler: Handler) -> None:
        self._methods[name] = handler

    def lookup(self, name: str) -> Optional[Handler]:
        return self._methods.get(name)


def _ping(params: Dict[str, Any]) -> Dict[str, Any]:
    del params
    return {"pong": True}


def _environment(params: Dict[str, Any]) -> Dict[str, Any]:
    del params
    return environment.collect(scan=True)  # afresh: never the list stored at build time


def default_dispatcher(cache: Optional[models.ModelCache] = None) -> Dispatcher:
    """The methods of protocol version 1. `shutdown` is handled by the worker loop itself. The
    model methods share one model cache (by default a new one sized by GSK_MODEL_CACHE_SIZE;
    a worker forked from a template gets the template's, preloaded models included), which
    only the worker's I/O thread touches."""
    dispatcher = Dispatcher()
    dispatcher.register("ping", _ping)
    dispatcher.register("environment", _environment)
    if cache is None:
        cache = models.ModelCache(models.cache_size_from_env())
    dispatcher.register("load_model", functools.partial(methods.load_model, cache))
    dispatcher.register("predict", functools.partial(methods.predict, cache))
    return dispatcher
