"""Loading models and keeping the recent ones: a pickle/joblib file, or a directory with a
giskard-model.json (an entry point, or an artifact plus code). See PROTOCOL.md, *Models*.

A model is an object with `predict(X)` (and optionally `predict_proba(X)`, `classes_`), or a
plain function of X. Loading runs the model's own code (unpickling is code execution): the
supervisor only names paths under its configured model roots.

The cache belongs to one worker and is used by its I/O thread only; nothing here is
thread-safe.
"""

import collections
import importlib
import inspect
import logging
import os
import pickle
import stat
import sys
import time
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from giskard_worker_shim import jsonout
from giskard_worker_shim.errors import ModelLoadError
from giskard_worker_shim.manifest import MANIFEST, Manifest, read_manifest
from giskard_worker_shim.optional import optional_module

log = logging.getLogger("giskard_worker_shim")

DEFAULT_CACHE_SIZE = 4
Stamp = Tuple[int, int]  # (size, mtime_ns) of a file


class LoadedModel:
    """A loaded model, ready to call; `signature` identifies the files it came from."""

    def __init__(self, obj: Any, kind: str, loader: Optional[str],
                 signature: Tuple[Stamp, ...], manifest: Optional[Manifest]) -> None:
        self.kind, self.loader = kind, loader
        self.signature, self.manifest = signature, manifest
        try:
            if _has_predict(obj):
                self.predict = obj.predict  # type: Callable[[Any], Any]
                proba = getattr(obj, "predict_proba", None)
                self.predict_proba = proba if callable(proba) else None
                self.classes = _classes(getattr(obj, "classes_", None))
            else:
                self.predict, self.predict_proba, self.classes = obj, None, None
        except MemoryError:
            raise
        except Exception as e:  # noqa: BLE001 (a property of the model's own code failed)
            raise ModelLoadError("cannot inspect the model: %s: %s" % (type(e).__name__, e)) \
                from e

    def describe(self, path: str, cached: bool, load_ms: float) -> Dict[str, Any]:
        """The `load_model` result."""
        result = {"model": path, "cached": cached, "kind": self.kind}  # type: Dict[str, Any]
        if self.loader is not None:
            result["loader"] = self.loader
        result.update(predictProba=self.predict_proba is not None, classes=self.classes,
                      loadMs=round(load_ms, 3))
        return result


def _has_predict(obj: Any) -> bool:
    return not inspect.isclass(obj) and callable(getattr(obj, "predict", None))


def _classes(value: Any) -> Optional[list]:
    if value is None:
        return None
    try:
        converted = jsonout.to_json(value)
    except TypeError:
        return None
    return converted if isinstance(converted, list) else None


def cache_size_from_env(environ: Mapping[str, str] = os.environ) -> int:
    """GSK_MODEL_CACHE_SIZE (default 4); a value that is not an integer >= 1 is logged and
    replaced by the default."""
    raw = environ.get("GSK_MODEL_CACHE_SIZE", "").strip()
    if not raw:
        return DEFAULT_CACHE_SIZE
    try:
        size = int(raw)
    except ValueError:
        size = 0
    if size < 1:
        log.warning("GSK_MODEL_CACHE_SIZE=%r is not an integer >= 1; using %d",
                    raw, DEFAULT_CACHE_SIZE)
        return DEFAULT_CACHE_SIZE
    return size


class ModelCache:
    """The `capacity` most recently used models, by path; a model whose files changed (size or
    mtime_ns of the file, or of giskard-model.json and the artifact) is loaded again. Used by
    the I/O thread only: not thread-safe."""

    def __init__(self, capacity: int = DEFAULT_CACHE_SIZE) -> None:
        self.capacity = max(1, capacity)
        self._entries = collections.OrderedDict()  # type: collections.OrderedDict

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, path: str) -> bool:
        return path in self._entries

    def get(self, path: str) -> Tuple[LoadedModel, bool]:
        """The model at `path` and whether it was cached; raises ModelLoadError."""
        signature, manifest = self._signature(path)
        entry = self._entries.get(path)
        if entry is not None and entry.signature == signature:
            self._entries.move_to_end(path)
            return entry, True
        if entry is not None:
            del self._entries[path]  # changed on disk: free it before loading the new one
            log.info("model %s changed on disk; loading it again", path)
        model = load(path, signature, manifest)
        self._entries[path] = model
        while len(self._entries) > self.capacity:
            evicted, _ = self._entries.popitem(last=False)
            log.info("evicted model %s from the cache (GSK_MODEL_CACHE_SIZE=%d)",
                     evicted, self.capacity)
        return model, False

    def _signature(self, path: str) -> Tuple[Tuple[Stamp, ...], Optional[Manifest]]:
        entry = self._entries.get(path)
        manifest_path = os.path.join(path, MANIFEST)
        # A cached directory: its manifest's stat alone says it still is one (one stat per
        # call, not three, on the path of every predict).
        manifest_info = _regular_or_none(manifest_path) \
            if entry is not None and entry.manifest is not None else None
        if manifest_info is None:
            info = _stat(path)
            if stat.S_ISREG(info.st_mode):
                return (_stamp(info),), None
            if not stat.S_ISDIR(info.st_mode):
                raise ModelLoadError("model %s is neither a file nor a directory" % path)
            manifest_info = _regular_or_none(manifest_path)
            if manifest_info is None:
                raise ModelLoadError("model %s is a directory without a %s" % (path, MANIFEST))
        manifest_stamp = _stamp(manifest_info)
        if entry is not None and entry.signature[0] == manifest_stamp:
            manifest = entry.manifest  # unchanged: no need to parse it again
        else:
            manifest = read_manifest(path)
        if manifest.artifact is None:
            return (manifest_stamp,), manifest
        return (manifest_stamp, _stamp(_stat(manifest.artifact))), manifest


def _stat(path: str) -> os.stat_result:
    try:
        return os.stat(path)
    except FileNotFoundError as e:
        raise ModelLoadError("model file %s does not exist" % path) from e
    except OSError as e:
        raise ModelLoadError("cannot access %s: %s: %s"
                             % (path, type(e).__name__, e.strerror or e)) from e


def _regular_or_none(path: str) -> Optional[os.stat_result]:
    """The stat of `path` if it is a regular file (symlinks followed), like os.path.isfile."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return info if stat.S_ISREG(info.st_mode) else None


def _stamp(info: os.stat_result) -> Stamp:
    return info.st_size, info.st_mtime_ns


def load(path: str, signature: Tuple[Stamp, ...], manifest: Optional[Manifest]) -> LoadedModel:
    """Loads the model at `path` (a file, or a directory described by `manifest`)."""
    if manifest is None:
        obj, loader = unpickle(path)
        return LoadedModel(_model_object(obj, path), loader, loader, signature, None)
    add_code_folders(manifest.code)
    if manifest.artifact is not None:
        obj, loader = unpickle(manifest.artifact)
        return LoadedModel(_model_object(obj, manifest.artifact), "artifact", loader,
                           signature, manifest)
    obj = resolve_entrypoint(manifest)
    return LoadedModel(obj, "entrypoint", None, signature, manifest)


def add_code_folders(folders: Any) -> None:
    """Puts `folders` at the front of sys.path, in order (moving those already there)."""
    for folder in reversed(folders):
        while folder in sys.path:
            sys.path.remove(folder)
        sys.path.insert(0, folder)
    if folders:
        importlib.invalidate_caches()


def unpickle(path: str) -> Tuple[Any, str]:
    """The object in a pickle, joblib or cloudpickle file, and the loader used: joblib.load
    when joblib is importable (it reads plain pickles too), else pickle.load."""
    joblib = optional_module("joblib")
    loader = "pickle" if joblib is None else "joblib"
    try:
        if joblib is not None:
            return joblib.load(path), loader
        with open(path, "rb") as f:
            return pickle.load(f), loader
    except MemoryError:
        raise
    except ModuleNotFoundError as e:
        raise ModelLoadError(
            "cannot unpickle %s: it needs the module %r, which this environment cannot import "
            "(ModuleNotFoundError: %s). Install it in the environment; if it is the model's "
            "own code, make the model a directory whose %s lists the folder that holds it "
            'under "code"' % (path, e.name, e, MANIFEST)) from e
    except OSError as e:
        raise ModelLoadError("cannot read %s: %s: %s"
                             % (path, type(e).__name__, e.strerror or e)) from e
    except Exception as e:  # noqa: BLE001 (unpickling runs arbitrary code)
        raise ModelLoadError("cannot unpickle %s with %s: %s: %s"
                             % (path, loader, type(e).__name__, e)) from e


def _model_object(obj: Any, where: str) -> Any:
    if _has_predict(obj) or callable(obj):
        return obj
    raise ModelLoadError("%s does not hold a model: a %s has no predict method and is not "
                         "callable" % (where, type(obj).__name__))


def resolve_entrypoint(manifest: Manifest) -> Any:
    """Imports the entry point and applies the rule of PROTOCOL.md: an object with `predict`
    is the model; a callable without required positional parameters is a factory, called
    once; a callable with one is the model, a plain function of X."""
    assert manifest.entrypoint is not None
    module_name, attributes = manifest.entrypoint
    name = "%s:%s" % (module_name, ".".join(attributes))
    try:
        obj = importlib.import_module(module_name)
        for attribute in attributes:
            obj = getattr(obj, attribute)
    except MemoryError:
        raise
    except Exception as e:  # noqa: BLE001 (importing runs the model's own code)
        raise ModelLoadError("%s: cannot load the entry point %s: %s: %s"
                             % (manifest.path, name, type(e).__name__, e)) from e
    if _has_predict(obj):
        return obj
    if not callable(obj):
        raise ModelLoadError("%s: the entry point %s is a %s: neither a model (no predict "
                             "method) nor callable" % (manifest.path, name, type(obj).__name__))
    required = _required_positional(obj)
    if required == 0:
        return _call_factory(obj, name, manifest.path)
    if required == 1 and not inspect.isclass(obj):
        return obj
    raise ModelLoadError("%s: the entry point %s needs %d positional arguments; a factory takes "
                         "none and a model function one (X)" % (manifest.path, name, required))


def _required_positional(function: Any) -> int:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return 1  # no signature to read (some builtins): take it for a function of X
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for p in signature.parameters.values()
               if p.kind in kinds and p.default is inspect.Parameter.empty)


def _call_factory(factory: Any, name: str, manifest_path: str) -> Any:
    try:
        obj = factory()
    except MemoryError:
        raise
    except Exception as e:  # noqa: BLE001 (the factory is the model's own code)
        raise ModelLoadError("%s: the factory %s raised %s: %s"
                             % (manifest_path, name, type(e).__name__, e)) from e
    return _model_object(obj, "the factory %s (in %s)" % (name, manifest_path))


def timed_get(cache: ModelCache, path: str) -> Tuple[LoadedModel, bool, float]:
    """cache.get(path), and the milliseconds it took."""
    start = time.perf_counter()
    model, cached = cache.get(path)
    return model, cached, (time.perf_counter() - start) * 1000.0
