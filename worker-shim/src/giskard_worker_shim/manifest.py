"""`giskard-model.json`, the description of a directory model, read and validated strictly.

    {"entrypoint": "package.module:attr.path", "code": ["src"]}
    {"artifact": "model.pkl", "code": ["src"]}

Exactly one of `entrypoint` and `artifact`; `code` is optional. Paths are relative to the model
directory and must stay inside it (symlinks included). Every error is a ModelLoadError naming
the file and the bad field. Pure functions (file reads only), safe on any thread.
"""

import json
import os
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from giskard_worker_shim.errors import ModelLoadError

MANIFEST = "giskard-model.json"
FIELDS = ("entrypoint", "artifact", "code")


class Manifest(NamedTuple):
    path: str                                   # the giskard-model.json file
    entrypoint: Optional[Tuple[str, List[str]]]  # (module, attribute path), or None
    artifact: Optional[str]                     # absolute path of the pickle, or None
    code: List[str]                             # absolute folders for sys.path, in order


def read_manifest(directory: str) -> Manifest:
    """Reads and validates `directory`/giskard-model.json."""
    path = os.path.join(directory, MANIFEST)
    data = _load_json(path)
    for field in data:
        if field not in FIELDS:
            raise _bad(path, 'unknown field %s (allowed: "entrypoint", "artifact", "code")'
                       % json.dumps(field))
    if ("entrypoint" in data) == ("artifact" in data):
        raise _bad(path, 'give exactly one of "entrypoint" and "artifact"')
    code = _code(directory, path, data.get("code", []))
    if "entrypoint" in data:
        return Manifest(path, _entrypoint(path, data["entrypoint"]), None, code)
    artifact = _inside(directory, path, '"artifact"', data["artifact"])
    return Manifest(path, None, artifact, code)


def _bad(path: str, problem: str) -> ModelLoadError:
    return ModelLoadError("%s: %s" % (path, problem))


def _load_json(path: str) -> Dict[str, Any]:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ModelLoadError("cannot read %s: %s: %s"
                             % (path, type(e).__name__, e.strerror or e)) from e
    try:
        data = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as e:
        raise ModelLoadError("%s is not valid JSON: %s" % (path, e)) from e
    if not isinstance(data, dict):
        raise _bad(path, "it must hold a JSON object")
    return data


def _no_duplicates(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    result = {}  # type: Dict[str, Any]
    for key, value in pairs:
        if key in result:
            raise ValueError("duplicate field %s" % json.dumps(key))
        result[key] = value
    return result


def _entrypoint(path: str, value: Any) -> Tuple[str, List[str]]:
    problem = '"entrypoint" must be a string "module:attribute" (e.g. "my_model:model")'
    if not isinstance(value, str) or value.count(":") != 1:
        raise _bad(path, problem)
    module, attribute = value.split(":")
    module_parts, attribute_parts = module.split("."), attribute.split(".")
    if not all(part.isidentifier() for part in module_parts + attribute_parts):
        raise _bad(path, "%s, got %s" % (problem, json.dumps(value)))
    return module, attribute_parts


def _code(directory: str, path: str, value: Any) -> List[str]:
    if not isinstance(value, list):
        raise _bad(path, '"code" must be a list of folders relative to the model directory')
    folders = []
    for index, entry in enumerate(value):
        field = '"code"[%d]' % index
        folder = _inside(directory, path, field, entry)
        if not os.path.isdir(folder):
            raise _bad(path, "%s (%s) is not a directory" % (field, json.dumps(entry)))
        folders.append(folder)
    return folders


def _inside(directory: str, path: str, field: str, value: Any) -> str:
    """The real path of `value` (relative to `directory`), which must lie inside it."""
    if not isinstance(value, str) or not value or "\0" in value:
        raise _bad(path, "%s must be a non-empty string" % field)
    if os.path.isabs(value):
        raise _bad(path, "%s must be relative to the model directory, got %s"
                   % (field, json.dumps(value)))
    root = os.path.realpath(directory)
    full = os.path.realpath(os.path.join(root, value))
    if os.path.commonpath([root, full]) != root:
        raise _bad(path, "%s (%s) leaves the model directory" % (field, json.dumps(value)))
    return full
