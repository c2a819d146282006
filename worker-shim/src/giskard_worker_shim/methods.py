"""The model methods `load_model` and `predict` (see PROTOCOL.md, *Models*). Each handler takes
the worker's ModelCache and the request's params; dispatch.py binds the cache.

They run on the worker's I/O thread, one at a time, which is what makes the cache (not
thread-safe) safe to share between them.
"""

import os
from typing import Any, Dict, List

from giskard_worker_shim.errors import InvalidInput
from giskard_worker_shim.jsonout import to_json
from giskard_worker_shim.models import ModelCache, timed_get
from giskard_worker_shim.tabular import build_x, parse_table


def model_path(params: Dict[str, Any]) -> str:
    path = params.get("model")
    if not isinstance(path, str) or not os.path.isabs(path) or "\0" in path:
        raise InvalidInput('"model" must be an absolute path')
    return path


def load_model(cache: ModelCache, params: Dict[str, Any]) -> Dict[str, Any]:
    """Loads the model (or finds it in the cache) and describes it."""
    path = model_path(params)
    model, cached, load_ms = timed_get(cache, path)
    return model.describe(path, cached, load_ms)


def predict(cache: ModelCache, params: Dict[str, Any]) -> Dict[str, Any]:
    """Runs the model on the request's rows. Input errors raise InvalidInput before the model is
    loaded; errors of the model's own code propagate unchanged."""
    path = model_path(params)
    table = parse_table(params)
    model, _, _ = timed_get(cache, path)
    x = build_x(table)
    result = {"predictions": _output(model.predict(x), "predict")}
    if model.predict_proba is not None:
        probabilities = _output(model.predict_proba(x), "predict_proba")
        result["probabilities"] = probabilities
        result["classes"] = model.classes if model.classes is not None \
            else _default_classes(probabilities)
    result["rows"] = len(table.rows)
    return result


def _output(raw: Any, method: str) -> List[Any]:
    """What the model returned, as a JSON list; TypeError if it is not a sequence."""
    value = to_json(raw)
    if not isinstance(value, list):
        raise TypeError("the model's %s returned a %s, not a sequence"
                        % (method, type(raw).__name__))
    return value


def _default_classes(probabilities: List[Any]) -> List[int]:
    """0..n-1, n the length of the first row (none without rows, or with flat rows)."""
    if probabilities and isinstance(probabilities[0], list):
        return list(range(len(probabilities[0])))
    return []
