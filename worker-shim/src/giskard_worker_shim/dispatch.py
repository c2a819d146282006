"""Request methods: name -> handler. A handler takes the request's `params` (a dict) and returns
the reply's `result` (a JSON-serializable dict); an exception becomes a structured error reply.

Inline methods run on the I/O thread and must be quick; the others run one at a time on the
worker's executor thread, so heartbeats keep flowing during a long model call.
"""

import functools
from typing import Any, Callable, Dict, NamedTuple, Optional

from giskard_worker_shim import environment, methods, models

Handler = Callable[[Dict[str, Any]], Dict[str, Any]]


class Method(NamedTuple):
    handler: Handler
    inline: bool


class Dispatcher:
    """A registry of methods. Built once before the worker runs; read-only afterwards."""

    def __init__(self) -> None:
        self._methods = {}  # type: Dict[str, Method]

    def register(self, name: str, handler: Handler, inline: bool = False) -> None:
        self._methods[name] = Method(handler, inline)

    def lookup(self, name: str) -> Optional[Method]:
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
    only the executor thread touches."""
    dispatcher = Dispatcher()
    dispatcher.register("ping", _ping, inline=True)
    dispatcher.register("environment", _environment, inline=True)
    if cache is None:
        cache = models.ModelCache(models.cache_size_from_env())
    dispatcher.register("load_model", functools.partial(methods.load_model, cache))
    dispatcher.register("predict", functools.partial(methods.predict, cache))
    return dispatcher
