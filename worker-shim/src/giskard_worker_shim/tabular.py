"""The `predict` input: validates `columns` + `rows` or `records` and builds the model's X.

X is a pandas.DataFrame when pandas is importable and the columns are known, else a numpy array
when numpy is, else the rows as plain lists. pandas and numpy are imported lazily, at the first
predict that needs them, and only once (see optional.py). Pure functions apart from that
import; they run on the worker's I/O thread.
"""

import json
from typing import Any, Dict, List, NamedTuple, Optional

from giskard_worker_shim.errors import InvalidInput
from giskard_worker_shim.optional import optional_module


class Table(NamedTuple):
    """Validated input rows; `columns` is None when the request gave none."""
    columns: Optional[List[str]]
    rows: List[List[Any]]


def parse_table(params: Dict[str, Any]) -> Table:
    """The rows of a predict request; raises InvalidInput naming what is wrong."""
    if "rows" in params and "records" in params:
        raise InvalidInput('give either "rows" or "records", not both')
    if "records" in params:
        if params.get("columns") is not None:
            raise InvalidInput('"columns" goes with "rows"; the keys of "records" name the '
                               'columns')
        return _from_records(params["records"])
    if "rows" not in params:
        raise InvalidInput('give "rows" (with or without "columns") or "records"')
    columns = params.get("columns")
    if columns is not None:
        _check_columns(columns)
    rows = params["rows"]
    _check_rows(rows, columns)
    return Table(columns, rows)


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _check_columns(columns: Any) -> None:
    if not isinstance(columns, list) or not columns:
        raise InvalidInput('"columns" must be a non-empty list of strings')
    seen = set()
    for index, name in enumerate(columns):
        if not isinstance(name, str):
            raise InvalidInput("columns[%d] is not a string" % index)
        if name in seen:
            raise InvalidInput("columns has %s twice" % _quote(name))
        seen.add(name)


def _check_rows(rows: Any, columns: Optional[List[str]]) -> None:
    if not isinstance(rows, list):
        raise InvalidInput('"rows" must be a list of lists')
    width = None if columns is None else len(columns)
    for index, row in enumerate(rows):
        if not isinstance(row, list):
            raise InvalidInput('rows[%d] is not a list ("rows" must be a list of lists)'
                               % index)
        if width is None:
            width = len(row)
        elif len(row) != width:
            raise InvalidInput("rows[%d] has %d values but %s has %d" % (
                index, len(row), "rows[0]" if columns is None else "columns", width))


def _from_records(records: Any) -> Table:
    if not isinstance(records, list):
        raise InvalidInput('"records" must be a list of objects')
    if not records:
        return Table(None, [])
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise InvalidInput("records[%d] is not an object" % index)
    columns = list(records[0])
    keys = records[0].keys()
    for index, record in enumerate(records):
        if record.keys() != keys:
            _key_mismatch(index, record, columns)
    return Table(columns, [[record[name] for name in columns] for record in records])


def _key_mismatch(index: int, record: Dict[str, Any], columns: List[str]) -> None:
    for name in columns:
        if name not in record:
            raise InvalidInput("records[%d] lacks key %s" % (index, _quote(name)))
    known = set(columns)
    extra = next(name for name in record if name not in known)
    raise InvalidInput("records[%d] has key %s, which records[0] lacks" % (index, _quote(extra)))


def build_x(table: Table) -> Any:
    """The model's input: a DataFrame, a numpy array or the rows themselves (see the module)."""
    try:
        if table.columns is not None:
            pandas = optional_module("pandas")
            if pandas is not None:
                return pandas.DataFrame(table.rows, columns=table.columns)
        numpy = optional_module("numpy")
        if numpy is not None:
            return numpy.asarray(table.rows)
    except (ValueError, TypeError) as e:  # e.g. cells that are lists of different lengths
        raise InvalidInput("cannot build the model's input from the rows: %s: %s"
                           % (type(e).__name__, e)) from e
    return table.rows
