"""Converts what model code returns (numpy arrays and scalars, pandas objects, tuples, dates...)
into plain JSON values.

Non-finite floats become the strings "NaN", "Infinity" and "-Infinity" (the proto3 JSON mapping
convention), so a reply is always valid RFC 8259 JSON. numpy and pandas are never imported here:
a value can only be a numpy or pandas object if model code imported them already, so they are
looked up in `sys.modules`. Pure functions, safe on any thread.
"""

import datetime
import decimal
import math
import sys
from typing import Any

NAN, POS_INF, NEG_INF = "NaN", "Infinity", "-Infinity"


def non_finite(value: float) -> str:
    """The string form of a float that is NaN or infinite."""
    if value != value:
        return NAN
    return POS_INF if value > 0 else NEG_INF


def to_json(value: Any) -> Any:
    """`value` as None, bool, int, finite float, str, list or dict (with str keys), recursively.
    Raises TypeError for a value that has no JSON form."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return value if math.isfinite(value) else non_finite(value)
    if kind is list or kind is tuple:
        return [to_json(item) for item in value]
    if kind is dict:
        return {_key(k): to_json(v) for k, v in value.items()}
    return _other(value)


def _key(key: Any) -> str:
    converted = to_json(key)
    return converted if isinstance(converted, str) else str(converted)


def _other(value: Any) -> Any:
    np = sys.modules.get("numpy")
    if np is not None:
        if isinstance(value, np.ndarray):
            return _ndarray(np, value)
        if isinstance(value, np.generic):
            return _ndarray(np, np.asarray(value))
    pd = sys.modules.get("pandas")
    if pd is not None:
        converted = _pandas(pd, value)
        if converted is not _UNKNOWN:
            return converted
    return _builtin(value)


_UNKNOWN = object()


def _pandas(pd: Any, value: Any) -> Any:
    if isinstance(value, pd.DataFrame):
        return to_json(value.to_numpy())  # one dtype when the columns share one: fast path
    if isinstance(value, (pd.Series, pd.Index)):
        return to_json(value.to_numpy())
    if value is pd.NaT or value is getattr(pd, "NA", None):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return _UNKNOWN


def _ndarray(np: Any, array: Any) -> Any:
    """One `.tolist()` for the common numeric case; a walk only when needed."""
    kind = array.dtype.kind
    if kind in "biu":
        return array.tolist()
    if kind == "f" and array.dtype.itemsize <= 8:
        values = array.tolist()
        return values if array.size == 0 or np.isfinite(array).all() else to_json(values)
    if kind == "f":  # float128 and the like: tolist() would keep numpy scalars
        return _ndarray(np, array.astype(np.float64))
    if kind == "M":  # datetime64 -> ISO text (tolist() gives ints for ns precision)
        return _with_nat(np, array, np.datetime_as_string(array))
    if kind == "m":  # timedelta64 -> seconds
        return _with_nat(np, array, array / np.timedelta64(1, "s"))
    if array.ndim == 0:
        return to_json(array.item())
    return to_json(array.tolist())


def _with_nat(np: Any, array: Any, values: Any) -> Any:
    """`values` (shaped like the datetime64/timedelta64 `array`), None where `array` is NaT."""
    nat = np.isnat(array)
    if array.ndim == 0:
        return None if nat else to_json(values.item())
    return to_json(np.where(nat, None, values.astype(object)).tolist())


def _builtin(value: Any) -> Any:
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return to_json(float(value))
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return to_json(float(value))
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, (list, tuple, set, frozenset, range)):
        return [to_json(item) for item in value]
    if isinstance(value, dict):
        return {_key(k): to_json(v) for k, v in value.items()}
    tolist = getattr(value, "tolist", None)  # array-likes of other libraries (torch, jax...)
    if callable(tolist):
        return to_json(tolist())
    raise TypeError("a value of type %s.%s has no JSON form"
                    % (type(value).__module__, type(value).__qualname__))
